import { execa } from 'execa';
import { mkdir, readdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Options, Result } from 'execa';
import tar from 'tar-stream';
import { bareon, REPO } from './cli.js';

let noDockerPath: Promise<string> | undefined;

/** A directory (under .test-artifacts/) for PATH with every tool of this machine except those `left` names. */
export async function pathWithout(dirName: string, left: (tool: string) => boolean): Promise<string> {
  const dir = path.join(REPO, '.test-artifacts', dirName);
  await mkdir(dir, { recursive: true });
  const have = new Set(await readdir(dir));
  for (const from of (process.env.PATH ?? '').split(':')) {
    for (const name of await readdir(from).catch(() => [] as string[])) {
      if (left(name) || have.has(name)) continue;
      have.add(name);
      await symlink(path.join(from, name), path.join(dir, name)).catch(() => {});
    }
  }
  return dir;
}

/** A PATH with every tool of this machine except docker: proof that deploy needs no Docker. */
function pathWithoutDocker(): Promise<string> {
  noDockerPath ??= pathWithout('path-without-docker', (name) => name.startsWith('docker'));
  return noDockerPath;
}

/** Starts bareon-deploy with DOCKER_HOST on a dead socket and no docker on PATH; resolves to the running process. */
export async function startDeploy(args: string[], opts: Options = {}) {
  const env = { PATH: await pathWithoutDocker(), DOCKER_HOST: 'unix:///nonexistent/docker.sock', ...opts.env };
  return { process: bareon('deploy', args, { stdin: 'ignore', ...opts, env }) };
}

/** Runs bareon-deploy without Docker (see startDeploy) and returns its result whatever the exit code. */
export async function deploy(args: string[], opts: Options = {}): Promise<Result> {
  return (await startDeploy(args, opts)).process;
}

/**
 * What a run may have left behind for `target`: loop devices over it, and bareon's mounts and temp
 * dirs in this test file's TMPDIR (tests in other files may be running beside it).
 */
export async function leftovers(target: string): Promise<string[]> {
  const found: string[] = [];
  const loops = (await execa('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'])).stdout;
  for (const line of loops.split('\n')) if (line.includes(target)) found.push(`loop: ${line.trim()}`);
  const ours = `${tmpdir()}/bareon-`;
  for (const line of (await readFile('/proc/mounts', 'utf8')).split('\n'))
    if (line.split(' ')[1]?.startsWith(ours)) found.push(`mount: ${line}`);
  for (const name of await readdir(tmpdir()))
    if (/^bareon-(root|scratch|grow)-/.test(name)) found.push(`temp: ${name}`);
  return found;
}

/** The sha256 of a file, as sha256sum prints it. */
/** An empty (sparse) image file of `size` bytes, in place of whatever was there. */
export async function blankDisk(file: string, size: number): Promise<string> {
  await writeFile(file, '');
  await truncate(file, size);
  return file;
}

export async function sha256File(file: string): Promise<string> {
  return (await execa('sha256sum', [file])).stdout.split(' ')[0];
}

/** A tar.zst with `entries` (name → content, or {link} for a symlink). */
export async function tarZst(file: string, entries: [string, string | { link: string }][]): Promise<void> {
  const pack = tar.pack();
  for (const [name, content] of entries) {
    if (typeof content === 'string') pack.entry({ name, mode: 0o644 }, content);
    else pack.entry({ name, type: 'symlink', linkname: content.link });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  await writeFile(`${file}.tar`, Buffer.concat(chunks));
  await execa('zstd', ['-q', '-f', '--rm', `${file}.tar`, '-o', file]);
}
