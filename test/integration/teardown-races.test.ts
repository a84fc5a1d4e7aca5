import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CleanupStack } from '../../src/core/cleanup.js';
import { HostExecutor } from '../../src/host/executor.js';
import { attachLoop } from '../../src/host/loop.js';
import { mountDevice, tempDir } from '../../src/host/mount.js';

/**
 * Ctrl-C lands while losetup or mount(8) runs: the tool is stopped, but the kernel may have attached
 * or mounted already. The teardowns must undo that too, at every instant of the race.
 */
const MiB = 2 ** 20;
let dir: string;
let image: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'races-'));
  image = path.join(dir, 'fs.img');
  await execa('truncate', ['-s', '33M', image]);
  await execa('mkfs.ext4', ['-q', '-F', '-E', `offset=${MiB}`, image, '32M']);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const loopsOver = async (file: string) =>
  (await execa('losetup', ['--noheadings', '--output', 'NAME', '--associated', file])).stdout.trim();
const mountsUnder = async (where: string) =>
  (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.includes(where));

describe('a stop while attaching and mounting', () => {
  it('leaves no loop device and no mount, whenever it lands', async () => {
    const outcomes: string[] = [];
    // delays across the life of losetup + mount (about 10-40 ms here), in 0.5 ms steps
    for (let tenths = 0; tenths <= 600; tenths += 5) {
      const cleanup = new CleanupStack();
      const stop = new AbortController();
      const ex = new HostExecutor(stop.signal);
      // as bareon's session does: at the stop, abort the run and start the teardowns at once
      let drained: Promise<Error[]> | undefined;
      const timer = setTimeout(() => {
        stop.abort(new Error('stopped'));
        drained = cleanup.run();
      }, tenths / 10);
      let got = 'done';
      try {
        const dev = await attachLoop(ex, cleanup, image, MiB, 32 * MiB);
        const where = await tempDir(cleanup, 'race', { mountPoint: true });
        await mountDevice(ex, cleanup, dev, where, 'ext4');
      } catch (err) {
        got = (err as Error).message === 'stopped' ? 'stopped' : `failed: ${(err as Error).message}`;
      }
      clearTimeout(timer);
      expect(got, `${tenths / 10} ms`).not.toMatch(/^failed/);
      outcomes.push(got);
      const failures = await (drained ?? cleanup.run());
      expect(
        failures.map((f) => f.message),
        `${tenths / 10} ms`,
      ).toEqual([]);
      expect(await loopsOver(image), `a loop device left after a stop at ${tenths / 10} ms`).toBe('');
      expect(
        await mountsUnder(tmpdir()).then((m) => m.filter((l) => l.includes('bareon-race-'))),
        `a mount left after a stop at ${tenths / 10} ms`,
      ).toEqual([]);
      const dirs = (await readdir(tmpdir())).filter((n) => n.startsWith('bareon-race-'));
      expect(dirs, `a mount point left after a stop at ${tenths / 10} ms`).toEqual([]);
    }
    // the sweep covered both sides: stops before the work ended, and runs that finished
    expect(outcomes).toContain('stopped');
    expect(outcomes).toContain('done');
  });
});
