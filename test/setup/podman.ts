import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';

/** Podman's Docker-compatible socket for the podman tier. */
export const PODMAN_SOCKET = '/run/podman/podman.sock';
export const PODMAN_HOST = `unix://${PODMAN_SOCKET}`;

const ping = () =>
  new Promise<boolean>((resolve) => {
    const req = http.get({ socketPath: PODMAN_SOCKET, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });

/**
 * Podman 4.3 leaves a conmon per exec session running after its container is gone; the tier stops
 * those of containers that no longer exist, so that it leaves no process behind.
 */
async function stopOrphanConmons(): Promise<void> {
  const alive = new Set(
    (await execa('podman', ['ps', '-a', '-q', '--no-trunc'], { reject: false })).stdout.split('\n').filter(Boolean),
  );
  const conmons = (await execa('pgrep', ['-a', 'conmon'], { reject: false })).stdout.split('\n').filter(Boolean);
  for (const line of conmons) {
    const [pid] = line.split(' ');
    const id = / -c ([0-9a-f]{64})/.exec(line)?.[1];
    if (!id || alive.has(id)) continue;
    try {
      process.kill(Number(pid), 'SIGTERM');
    } catch {
      // gone since pgrep listed it
    }
  }
}

/**
 * The podman tier runs against Podman: this starts `podman system service` for the tier's run
 * (unless one already answers) and stops it afterwards, and points DOCKER_HOST at it, so the base
 * bootstrap that follows in the tier's setup, the tests and the commands they start all use Podman.
 */
export default async function usePodman(): Promise<() => Promise<void>> {
  let service: ChildProcess | undefined;
  if (!(await ping())) {
    await mkdir('/run/podman', { recursive: true });
    service = spawn('podman', ['system', 'service', '--time=0', PODMAN_HOST], { stdio: 'ignore' });
    for (let i = 0; i < 60 && !(await ping()); i++) await new Promise((r) => setTimeout(r, 500));
    if (!(await ping()))
      throw new Error(
        `podman system service did not answer on ${PODMAN_SOCKET} (is podman installed? make setup installs it)`,
      );
  }
  process.env.DOCKER_HOST = PODMAN_HOST;
  return async () => {
    if (!service) return;
    service.kill('SIGTERM');
    await new Promise((r) => service!.once('exit', r));
    await stopOrphanConmons();
  };
}
