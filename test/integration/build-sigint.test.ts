import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BIN } from '../helpers/cli.js';
import { bareonContainers } from '../helpers/docker.js';
import { TEST_BASE_IMAGE } from '../helpers/images.js';
import { prng } from '../fuzz/prng.js';

/**
 * SIGINT at random points of `--no-cache` builds, spread over a whole build's length (measured
 * first): no container labelled by bareon is left, checked the moment bareon has exited. A step
 * container whose create call was in flight when the signal came is removed too (by the run label).
 */
const POINTS = Number(process.env.BAREON_SIGINT_POINTS ?? 30);
const SEED = Number(process.env.BAREON_FUZZ_SEED ?? 20261206);
let dir: string;
let profile: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-build-sigint-'));
  profile = path.join(dir, 'sweep.yaml');
  // several short steps: many create/start/commit calls for the signal to fall between
  const run = ['echo one > /one', 'echo two > /two', 'sleep 0.3', 'echo three > /three'];
  await writeFile(
    profile,
    stringify({
      name: 'sweep',
      base: { image: TEST_BASE_IMAGE },
      files: [{ path: '/etc/sweep', content: 'x\n' }],
      run,
      outputs: ['tar'],
    }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const build = (delay?: number) => {
  const child = execa(process.execPath, [BIN.build, profile, '-o', path.join(dir, 'out'), '--no-cache'], {
    reject: false,
    all: true,
    env: { BAREON_PLUGIN_PATH: '' },
  });
  if (delay !== undefined) setTimeout(() => child.kill('SIGINT'), delay);
  return child;
};

describe('SIGINT during --no-cache builds', () => {
  it(`at ${POINTS} random points leaves no labelled container`, async () => {
    expect(await bareonContainers()).toEqual([]);
    const started = Date.now();
    const whole = await build();
    expect(whole.exitCode, String(whole.all)).toBe(0);
    const ms = Date.now() - started;
    const rand = prng(SEED);
    const outcomes: string[] = [];
    for (let i = 0; i < POINTS; i++) {
      const delay = Math.floor(rand() * ms);
      const r = await build(delay);
      const code = r.signal === 'SIGINT' ? 130 : r.exitCode;
      outcomes.push(`${delay}ms→${code}`);
      const story = `SIGINT after ${delay} ms (seed ${SEED}, point ${i}): exit ${r.exitCode}, signal ${r.signal}\n${r.all}`;
      expect([0, 130], story).toContain(code);
      expect(await bareonContainers(), story).toEqual([]);
    }
    console.log(`a whole --no-cache build took ${ms} ms; SIGINT at ${outcomes.join(', ')}`);
    expect(outcomes.filter((o) => o.endsWith('→130')).length).toBeGreaterThan(POINTS / 2);
    await execa(process.execPath, [BIN.bareon, 'gc', '--max-age', '0s', '--profile', 'sweep', '--keep-apt-cache'], {
      reject: false,
    });
  });
});
