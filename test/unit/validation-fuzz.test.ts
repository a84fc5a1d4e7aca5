import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateFile } from '../../src/cli/commands/validate.js';
import { exitCodeOf } from '../../src/core/errors.js';
import { BIN, REPO } from '../helpers/cli.js';
import { prng } from '../fuzz/prng.js';

const JUNK = [
  '-5GiB',
  '100%',
  '',
  '~',
  'null',
  '[]',
  '{}',
  '1e309',
  '-1',
  '0',
  '"\\u0000"',
  'yes',
  '&a [*a, *a]',
  '!!binary aGk=',
  '"../../etc"',
  'remaining',
  'auto',
  '{type: vfat}',
  "'",
  '"',
  ':',
  '- x',
  '999999999999999999999TiB',
  '0x10',
  '@',
  '*nope',
  '!!js/function "x"',
];
const ALIAS_BOMB = [
  'a: &a [x, x, x, x, x, x, x, x, x]',
  'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
  'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
  'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
  'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
].join('\n');

/** One random edit of a YAML text: a dropped, doubled or re-indented line, a junk value, stray characters. */
function mutate(text: string, rand: () => number): string {
  const lines = text.split('\n');
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const i = Math.floor(rand() * lines.length);
  switch (Math.floor(rand() * 6)) {
    case 0:
      lines.splice(i, 1);
      break;
    case 1:
      lines.splice(i, 0, lines[i]);
      break;
    case 2:
      lines[i] = lines[i].replace(/(:\s*)([^#{[\n][^\n]*)$/, (_m, sep) => `${sep}${pick(JUNK)}`);
      break;
    case 3:
      lines[i] = `${' '.repeat(Math.floor(rand() * 5))}${lines[i]}`;
      break;
    case 4: {
      const at = Math.floor(rand() * (lines[i].length + 1));
      lines[i] = lines[i].slice(0, at) + pick(JUNK) + lines[i].slice(at);
      break;
    }
    default:
      lines[i] = lines[i].replace(
        /^(\s*-?\s*)[a-z_]+:/,
        (_m, lead) =>
          `${lead}${pick(['name', 'size', 'type', 'fs', 'mount', 'packages', 'bogus', 'disks', 'layout'])}:`,
      );
  }
  return lines.join('\n');
}

let dir: string;
let bases: { name: string; text: string }[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-fuzz-'));
  bases = [];
  for (const d of ['profiles', 'profiles/layouts', 'test/fixtures/layouts']) {
    for (const f of (await readdir(path.join(REPO, d))).filter((n) => n.endsWith('.yaml')))
      bases.push({ name: `${d}/${f}`, text: await readFile(path.join(REPO, d, f), 'utf8') });
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('profiles and layouts, fuzzed', () => {
  it('every mutated input validates or fails with a validation error (exit 2), never anything else', async () => {
    const seed = Number(process.env.BAREON_FUZZ_SEED ?? 20261127);
    const rand = prng(seed);
    let valid = 0;
    let refused = 0;
    for (let n = 0; n < 600; n++) {
      const base = bases[Math.floor(rand() * bases.length)];
      let text = base.text;
      for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) text = mutate(text, rand);
      if (n % 50 === 0) text = `${ALIAS_BOMB}\n${text}`;
      // profiles name their layout relative to themselves: keep the mutated file beside the original
      const file = path.join(REPO, path.dirname(base.name), `.fuzz-${process.pid}.yaml`);
      await writeFile(file, text);
      try {
        await validateFile(file);
        valid++;
      } catch (err) {
        if (exitCodeOf(err) !== 2)
          throw new Error(
            `seed ${seed}, input ${n} (from ${base.name}) fails with exit ${exitCodeOf(err)}: ${(err as Error).stack}\n--- input ---\n${text}`,
          );
        expect((err as Error).message).toContain('.fuzz-');
        refused++;
      } finally {
        await rm(file, { force: true });
      }
    }
    expect(valid + refused).toBe(600);
    expect(refused).toBeGreaterThan(100);
  });

  it('an alias bomb and package names apt would read as options exit 2 with the file named, without a stack trace', async () => {
    const bomb = path.join(dir, 'bomb.yaml');
    await writeFile(bomb, `${ALIAS_BOMB}\nname: x\n`);
    const b = await execa(process.execPath, [BIN.bareon, 'validate', bomb], { reject: false, all: true });
    expect(b.exitCode).toBe(2);
    expect(String(b.all)).toContain(bomb);
    expect(String(b.all)).not.toMatch(/\n\s+at /);

    const pkgs = path.join(dir, 'pkgs.yaml');
    await writeFile(pkgs, "name: x\nbase: {distro: debian, suite: bookworm}\npackages: [curl, '-5GiB', '100%']\n");
    const p = await execa(process.execPath, [BIN.bareon, 'validate', pkgs], { reject: false, all: true });
    expect(p.exitCode).toBe(2);
    expect(String(p.all)).toMatch(/pkgs\.yaml:3:\d+.*packages\[1\]/);
    expect(String(p.all)).not.toMatch(/\n\s+at /);
  });
});
