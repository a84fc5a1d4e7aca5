import { execa } from 'execa';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { leftovers, sha256File, startDeploy } from '../helpers/deploy.js';
import { prng } from '../fuzz/prng.js';

/**
 * SIGINT at random points of deploys of each kind of source, spread over the whole length of a run
 * (measured first): every interrupted run exits 130 and leaves no process, loop device, mount, temp
 * dir or readable partition table behind.
 */
const POINTS = Number(process.env.BAREON_SIGINT_POINTS ?? 20);
const SEED = Number(process.env.BAREON_FUZZ_SEED ?? 20261206);
const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sigint-'));
  // a 1 GiB disk with 192 MiB of data spread over it: qcow2 and one-frame raw.zst
  const raw = path.join(dir, 'disk.raw');
  await execa('truncate', ['-s', '1G', raw]);
  await execa('sgdisk', ['-o', '-n', '1:2048:0', raw]);
  for (let at = 16; at < 1024; at += 128)
    await execa('dd', [
      'if=/dev/urandom',
      `of=${raw}`,
      'bs=1M',
      `seek=${at}`,
      'count=24',
      'conv=notrunc',
      'status=none',
    ]);
  await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path.join(dir, 'disk.qcow2')]);
  await execa('zstd', ['-q', '-1', '-T0', raw, '-o', path.join(dir, 'disk.raw.zst')]);
  // a root filesystem of a few thousand files
  await execa('sh', [
    '-c',
    `tar -C / -cf - usr/share/doc usr/share/perl usr/lib/python3 2>/dev/null | zstd -q -T0 -1 -o ${path.join(dir, 'rootfs.tar.zst')}`,
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Processes whose command line names `where` (tools bareon started on the target). */
async function processesOn(where: string): Promise<string[]> {
  const { stdout } = await execa('ps', ['-eo', 'pid=,args=']);
  return stdout.split('\n').filter((l) => l.includes(where) && !l.includes('ps -eo'));
}

const hasTable = async (file: string) =>
  (await stat(file).catch(() => undefined)) !== undefined &&
  (await execa('sfdisk', ['--json', file], { reject: false })).exitCode === 0;

const SOURCES = [
  { name: 'qcow2', file: 'disk.qcow2', args: ['--size', '1G'] },
  { name: 'raw.zst', file: 'disk.raw.zst', args: ['--size', '1G'] },
  { name: 'tar.zst', file: 'rootfs.tar.zst', args: ['--layout', PLAIN, '--size', '2G'] },
];

describe.each(SOURCES)('SIGINT during a deploy of a $name', ({ name, file, args }) => {
  it(`at ${POINTS} random points leaves nothing behind`, async () => {
    const source = path.join(dir, file);
    const run = async (tag: string, delay?: number, extra: string[] = []) => {
      const target = path.join(dir, `${name}.${tag}.img`);
      const started = Date.now();
      const { process: child } = await startDeploy([source, target, ...args, '--no-verify', ...extra]);
      if (delay !== undefined) setTimeout(() => child.kill('SIGINT'), delay);
      const r = await child;
      return { r, target, ms: Date.now() - started, started };
    };
    const whole = await run('whole', undefined, ['--log-format', 'json']);
    // the points spread over the run until its last task finished (after that, a SIGINT lets the
    // teardowns finish and exits 0 by design), and a little past it
    const lastTask = Math.max(
      ...String(whole.r.stdout)
        .split('\n')
        .filter((l) => l.includes('"event":"finished"'))
        .map((l) => Date.parse(JSON.parse(l).time) - whole.started),
    );
    const windowMs = Math.min(whole.ms, Math.round(lastTask * 1.1));
    expect(whole.r.exitCode, String(whole.r.all)).toBe(0);
    const wholeSha = await sha256File(whole.target);
    await rm(whole.target);
    /** A deploy that exited 0 wrote the whole disk: the same bytes for an image, a clean filesystem for a tarball (its UUIDs are new each run). */
    const complete = async (target: string) =>
      name === 'tar.zst'
        ? (await hasTable(target)) &&
          (await execa('e2fsck', ['-fn', `${target}?offset=${2 ** 20}`], { reject: false })).exitCode === 0
        : (await sha256File(target)) === wholeSha;
    const rand = prng(SEED + name.length);
    const outcomes: string[] = [];
    for (let i = 0; i < POINTS; i++) {
      const delay = Math.floor(rand() * windowMs);
      const { r, target } = await run(String(i), delay);
      // killed by the signal itself: Node had not yet set up its handler, so nothing had started (a shell says 130 too)
      const code = r.signal === 'SIGINT' ? 130 : r.exitCode;
      outcomes.push(`${delay}ms→${code}`);
      const story = `${name}: SIGINT after ${delay} ms (seed ${SEED}, point ${i}): exit ${r.exitCode}, signal ${r.signal}\n${r.all}`;
      expect([0, 130], story).toContain(code);
      expect(await processesOn(target), story).toEqual([]);
      expect(await leftovers(target), story).toEqual([]);
      if (code === 130) expect(await hasTable(target), story).toBe(false);
      else expect(await complete(target), `${story}\nexit 0, but the disk is not complete`).toBe(true);
      await rm(target, { force: true });
    }
    console.log(
      `${name}: a whole deploy took ${whole.ms} ms, its last task ended at ${lastTask} ms; SIGINT at ${outcomes.join(', ')}`,
    );
    expect(outcomes.filter((o) => o.endsWith('→130')).length).toBeGreaterThan(POINTS / 4);
  });
});
