import { execa } from 'execa';
import { RUN_LABEL } from '../../src/docker/engine.js';

/** Ids of containers any bareon run left behind (the run label set; images bareon commits carry it empty). */
export async function bareonContainers(): Promise<string[]> {
  const { stdout } = await execa('docker', [
    'ps',
    '-a',
    '--filter',
    `label=${RUN_LABEL}`,
    '--format',
    `{{.ID}} {{.Label "${RUN_LABEL}"}}`,
  ]);
  return stdout
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([id, run]) => id && run)
    .map(([id]) => id);
}

/**
 * The bareon containers still there once the engine has settled: Podman finishes removing a killed
 * container a moment after its API answered, so a leak is what remains after `ms`.
 */
export async function leftoverContainers(ms = 10_000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const ids = await bareonContainers();
    if (ids.length === 0 || Date.now() > until) return ids;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Paths (or `tar -tv` lines) in `docker export` of a fresh container from `image` (the raw export, artifacts included). */
export async function dockerExportList(image: string, opts: { verbose?: boolean } = {}): Promise<string[]> {
  const { stdout: id } = await execa('docker', ['create', image, '/bin/true']);
  try {
    const { stdout } = await execa('sh', ['-c', `docker export ${id} | tar -t${opts.verbose ? 'v' : ''}`], {
      maxBuffer: 1 << 28,
    });
    return stdout.split('\n').filter(Boolean);
  } finally {
    await removeContainer(id);
  }
}

/** `docker rm -f`, asked again until the container is gone (Podman may still be closing an export). */
async function removeContainer(id: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    await execa('docker', ['rm', '-f', id], { reject: false });
    if ((await execa('docker', ['inspect', id], { reject: false })).exitCode !== 0) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`container ${id} is still there after docker rm -f`);
}
