import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAR_EXTRACT_ARGS } from '../../src/rootfs/extract-guard.js';
import { BareonError } from '../../src/core/errors.js';
import { REPO } from '../helpers/cli.js';
import { deploy, leftovers } from '../helpers/deploy.js';
import { extractPartition } from '../helpers/disk-checks.js';
import { extractGuard } from '../../src/rootfs/extract-guard.js';
import { TarFilter, type TarEntryInfo } from '../../src/rootfs/tar-filter.js';
import { END, file, header, mutate, pad, randomArchive, seeded, type Rng } from '../fuzz/tar-mutate.js';

/**
 * Differential fuzzing of bareon-deploy's tar path: each archive is extracted through TarFilter and
 * extractGuard into GNU tar, exactly as actions/deployers/rootfs-tar.ts pipes it, and by GNU tar
 * alone, beside a sentinel directory. Nothing outside the root may change, bareon may only fail
 * with a BareonError, what tar wrote must be what the guard was shown, and an archive both accept
 * must give the same tree. BAREON_FUZZ_CASES and BAREON_FUZZ_SEED run it longer or replay a seed.
 */

const CASES = Number(process.env.BAREON_FUZZ_CASES ?? 1800);
/** BAREON_FUZZ_DUMP=DIR writes each case's archive there, as SEED.tar. */
const SEED = Number(process.env.BAREON_FUZZ_SEED ?? Date.now() % 1_000_000_007);
/** The deployer's own tar command line, so that the fuzzer checks what a deploy runs. */
const TAR_ARGS = TAR_EXTRACT_ARGS;

interface Seed {
  /** the PRNG seed of the case (a case is random archive, then mutations, from this seed) */
  seed: number;
  /** what it found, for the log */
  found: string;
}

let scratch: string;
let outside: string;
let sentinel: Map<string, string>;
let realTars: Buffer[] = [];

/** type, mode, size, content hash, link target, owner (and mtime for the sentinel) of every path under `dir`; names as bytes. */
async function snapshot(dir: string, withTimes = false): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: Buffer) => {
    const full = Buffer.concat([Buffer.from(dir), rel.length ? Buffer.from('/') : Buffer.alloc(0), rel]);
    const st = await lstat(full, { bigint: true });
    const kind = st.isFile()
      ? 'f'
      : st.isDirectory()
        ? 'd'
        : st.isSymbolicLink()
          ? 'l'
          : st.isFIFO()
            ? 'p'
            : st.isCharacterDevice()
              ? 'c'
              : st.isBlockDevice()
                ? 'b'
                : '?';
    let what = `${kind} ${(st.mode & 0o7777n).toString(8)} ${st.uid}:${st.gid}`;
    if (kind === 'f')
      what += ` ${st.size} ${createHash('sha256')
        .update(await readFile(full))
        .digest('hex')
        .slice(0, 16)}`;
    if (kind === 'l') what += ` -> ${(await readlink(full, { encoding: 'buffer' })).toString('latin1')}`;
    if (kind === 'c' || kind === 'b') what += ` ${st.rdev}`;
    if (withTimes) what += ` ${st.mtimeNs} ${st.nlink}`;
    out.set(rel.toString('latin1') || '.', what);
    if (kind === 'd') {
      const names = (await readdir(full, { encoding: 'buffer' })).sort(Buffer.compare);
      for (const name of names) await walk(rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name);
    }
  };
  await walk(Buffer.alloc(0));
  return out;
}

const diff = (a: Map<string, string>, b: Map<string, string>) =>
  [...new Set([...a.keys(), ...b.keys()])]
    .filter((k) => a.get(k) !== b.get(k))
    .map((k) => `${k}: ${a.get(k) ?? '(none)'} | ${b.get(k) ?? '(none)'}`);

type Outcome =
  | { kind: 'accepted' }
  | { kind: 'refused'; message: string }
  | { kind: 'tar-failed'; message: string }
  | { kind: 'crash'; message: string };

/** bareon's path: the filter and guard piped into GNU tar as rootfs-tar does it. */
async function throughBareon(tar: Buffer, root: string, seen: string[]): Promise<Outcome> {
  const guard = extractGuard();
  const decide = (e: TarEntryInfo) => {
    seen.push(e.rawName ?? e.name);
    return guard(e);
  };
  const child = execa('tar', [...TAR_ARGS, root], { stdin: 'pipe', reject: false, all: true });
  child.stdin!.on('error', () => {});
  const chunks = Array.from({ length: Math.ceil(tar.length / 4096) }, (_, i) => tar.subarray(i * 4096, (i + 1) * 4096));
  const [fed, r] = await Promise.allSettled([
    pipeline(Readable.from(chunks), new TarFilter({ decide }), child.stdin!),
    child,
  ]);
  const result = (r as PromiseFulfilledResult<Awaited<typeof child>>).value;
  if (fed.status === 'rejected') {
    const err = fed.reason as Error & { code?: string };
    if (err instanceof BareonError) return { kind: 'refused', message: err.message };
    // tar gave up first and closed its input: its own failure, reported as such by rootfs-tar
    if (result.exitCode !== 0 && (err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE'))
      return { kind: 'tar-failed', message: String(result.all).split('\n')[0] };
    return { kind: 'crash', message: `${err.name}: ${err.message}\n${err.stack}` };
  }
  return result.exitCode === 0
    ? { kind: 'accepted' }
    : { kind: 'tar-failed', message: String(result.all).split('\n')[0] };
}

/** Path components as the kernel walks them. */
const canonical = (p: string) =>
  p
    .split('/')
    .filter((c) => c !== '' && c !== '.')
    .join('/');

interface Tally {
  cases: number;
  accepted: number;
  refused: number;
  tarFailed: number;
  compared: number;
  gnuAloneEscaped: number;
  failures: string[];
}

async function runCase(seed: number, tally: Tally, log: boolean): Promise<void> {
  const rng: Rng = seeded(seed);
  const base =
    rng.chance(0.25) && realTars.length
      ? { tar: rng.pick(realTars), label: 'gnu-tar' }
      : randomArchive(rng, { outside });
  const m = rng.chance(0.6) ? mutate(rng, base.tar) : { tar: base.tar, label: 'intact' };
  const a = path.join(scratch, 'root-bareon');
  const b = path.join(scratch, 'root-gnu');
  await rm(a, { recursive: true, force: true });
  await rm(b, { recursive: true, force: true });
  await mkdir(a);
  await mkdir(b);
  const fail = (why: string) => tally.failures.push(`seed ${seed} (${base.label} / ${m.label}): ${why}`);
  if (process.env.BAREON_FUZZ_DUMP) await writeFile(path.join(process.env.BAREON_FUZZ_DUMP, `${seed}.tar`), m.tar);

  const seen: string[] = [];
  const outcome = await throughBareon(m.tar, a, seen);
  tally.cases++;
  if (outcome.kind === 'accepted') tally.accepted++;
  else if (outcome.kind === 'refused') tally.refused++;
  else if (outcome.kind === 'tar-failed') tally.tarFailed++;
  else fail(`bareon crashed: ${outcome.message}`);
  const escaped = diff(sentinel, await snapshot(outside, true));
  const parent = (await readdir(scratch)).sort().join(',');
  if (escaped.length || parent !== 'outside,root-bareon,root-gnu') {
    fail(`bareon's path changed things outside the root: ${escaped.join('; ')} [${parent}]`);
    await resetOutside();
  }
  // what tar wrote must be what the guard was shown (or a directory on the way to it)
  if (outcome.kind !== 'crash') {
    const shown = new Set(seen.map(canonical));
    const ancestors = new Set([...shown].flatMap((n) => n.split('/').map((_, i, all) => all.slice(0, i).join('/'))));
    for (const p of (await snapshot(a)).keys()) {
      const rel = canonical(p);
      if (rel && !shown.has(rel) && !ancestors.has(rel))
        fail(`tar wrote "${rel}", which the guard was never shown (shown: ${[...shown].join(', ')})`);
    }
  }

  const gnu = await execa('tar', [...TAR_ARGS, b], { input: m.tar, reject: false, all: true });
  if (diff(sentinel, await snapshot(outside, true)).length) {
    tally.gnuAloneEscaped++;
    await resetOutside();
  }
  if (outcome.kind === 'accepted' && gnu.exitCode === 0 && !gnu.all) {
    tally.compared++;
    const d = diff(await snapshot(a), await snapshot(b));
    if (d.length) fail(`trees differ: ${d.slice(0, 5).join('; ')}`);
  }
  if (log)
    console.log(
      `seed ${seed}: ${base.label} / ${m.label} -> ${outcome.kind}${'message' in outcome ? `: ${outcome.message.split('\n')[0]}` : ''}`,
    );
}

async function resetOutside(): Promise<void> {
  await rm(outside, { recursive: true, force: true });
  await makeOutside();
  sentinel = await snapshot(outside, true);
}

async function makeOutside(): Promise<void> {
  await mkdir(path.join(outside, 'dir'), { recursive: true });
  await writeFile(path.join(outside, 'file'), 'sentinel\n', { mode: 0o640 });
  await writeFile(path.join(outside, 'dir', 'inner'), 'inner sentinel\n');
  await symlink('file', path.join(outside, 'link'));
}

/** Real archives from GNU tar: sparse files (old GNU and PAX 0.0/0.1/1.0), links, long names, a FIFO. */
async function gnuArchives(): Promise<Buffer[]> {
  const root = await mkdtemp(path.join(tmpdir(), 'fuzz-tree-'));
  await mkdir(path.join(root, 'd', 'n'.repeat(120)), { recursive: true });
  const fh = await open(path.join(root, 'sparse'), 'w');
  for (let i = 0; i < 7; i++) await fh.write(Buffer.alloc(700 + i, 0x61 + i), 0, 700 + i, i * 16384);
  await fh.truncate(200_000);
  await fh.close();
  await writeFile(path.join(root, 'd', 'n'.repeat(120), 'long'), 'long\n');
  await writeFile(path.join(root, 'plain'), 'plain\n');
  await symlink('/etc', path.join(root, 'abs'));
  await symlink('d', path.join(root, 'rel'));
  await execa('ln', [path.join(root, 'plain'), path.join(root, 'hard')]);
  await execa('mkfifo', [path.join(root, 'fifo')]);
  const out: Buffer[] = [];
  for (const args of [
    ['--format=gnu'],
    ['--format=posix', '--sparse-version=0.0'],
    ['--format=posix', '--sparse-version=0.1'],
    ['--format=posix', '--sparse-version=1.0'],
    ['--format=oldgnu'],
    ['--format=ustar'],
  ]) {
    const r = await execa('tar', ['--sparse', ...args, '-C', root, '-cf', '-', '.'], {
      encoding: 'buffer',
      reject: false,
    });
    if (r.exitCode === 0) out.push(Buffer.from(r.stdout));
  }
  return out;
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'fuzz-tar-'));
  outside = path.join(scratch, 'outside');
  await makeOutside();
  sentinel = await snapshot(outside, true);
  realTars = await gnuArchives();
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('differential fuzzing of the rootfs tar path (filter + guard + GNU tar) against GNU tar alone', () => {
  it('replays every case that ever failed', async () => {
    const tally: Tally = {
      cases: 0,
      accepted: 0,
      refused: 0,
      tarFailed: 0,
      compared: 0,
      gnuAloneEscaped: 0,
      failures: [],
    };
    const seeds = JSON.parse(await readFile(new URL('../fuzz/seeds/tar.json', import.meta.url), 'utf8')) as Seed[];
    for (const s of seeds) await runCase(s.seed, tally, true);
    expect(tally.failures).toEqual([]);
  });

  it(`survives ${CASES} random cases (seed ${SEED})`, async () => {
    const tally: Tally = {
      cases: 0,
      accepted: 0,
      refused: 0,
      tarFailed: 0,
      compared: 0,
      gnuAloneEscaped: 0,
      failures: [],
    };
    const start = Date.now();
    const rng = seeded(SEED);
    for (let i = 0; i < CASES; i++) {
      const seed = rng.int(2 ** 31);
      await runCase(seed, tally, false).catch((err: Error) =>
        tally.failures.push(`seed ${seed}: the harness failed: ${err.stack}`),
      );
    }
    const { failures, ...figures } = tally;
    console.log(
      `fuzz-tar: seed ${SEED}, ${CASES} cases in ${((Date.now() - start) / 1000).toFixed(1)} s: ${JSON.stringify(figures)}; replay one with BAREON_FUZZ_SEED, or add its case seed to test/fuzz/seeds/tar.json`,
    );
    expect(failures).toEqual([]);
    expect(tally.accepted).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });
});

/** The one file of the root partition of a deployed plain-ext4 image, read with debugfs. */
async function fileInImage(image: string, name: string): Promise<Buffer> {
  const table = JSON.parse((await execa('sfdisk', ['-J', image])).stdout).partitiontable;
  const root = table.partitions[0];
  const part = await extractPartition(image, root.start * table.sectorsize, root.size * table.sectorsize);
  const out = path.join(path.dirname(part), 'dumped');
  await execa('debugfs', ['-R', `dump /${name} ${out}`, part]);
  const data = await readFile(out);
  await rm(path.dirname(part), { recursive: true, force: true });
  return data;
}

describe('real bareon-deploy runs of rootfs tarballs (loop devices, mounts)', () => {
  const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');

  it('deploys a GNU --sparse tar.zst (issue 9), its sparse file intact', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fuzz-deploy-'));
    const root = path.join(dir, 'tree');
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc', 'hostname'), 'sparse\n');
    const fh = await open(path.join(root, 'sparse.img'), 'w');
    for (let i = 0; i < 9; i++) await fh.write(Buffer.alloc(5000, 0x30 + i), 0, 5000, i * 100_000);
    await fh.truncate(1_000_000);
    await fh.close();
    const expected = await readFile(path.join(root, 'sparse.img'));
    const rootfs = path.join(dir, 'sparse.tar.zst');
    await execa('sh', ['-c', `tar --sparse --format=gnu -C ${root} -cf - . | zstd -q -o ${rootfs}`]);
    const target = path.join(dir, 'sparse.img');
    const r = await deploy([rootfs, target, '--layout', PLAIN, '--size', '256M', '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(
      createHash('sha256')
        .update(await fileInImage(target, 'sparse.img'))
        .digest('hex'),
    ).toBe(createHash('sha256').update(expected).digest('hex'));
    expect(await leftovers(target)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an archive that hides an entry behind a damaged header, writing nothing outside', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'fuzz-deploy-'));
    await mkdir(path.join(dir, 'outside'));
    await writeFile(path.join(dir, 'outside', 'file'), 'sentinel\n');
    const before = await snapshot(path.join(dir, 'outside'), true);
    const bad = header({ name: 'cover', size: 1024 });
    bad[0] ^= 1;
    const hidden = file('lnk/owned', 'owned\n');
    const tar = Buffer.concat([
      file('etc/hostname', 'x\n'),
      header({ name: 'lnk', type: '2', linkname: path.join(dir, 'outside') }),
      bad,
      pad(Buffer.concat([hidden, Buffer.alloc(512)])).subarray(0, 1024),
      END,
    ]);
    await writeFile(path.join(dir, 'hidden.tar'), tar);
    await execa('zstd', ['-q', '--rm', path.join(dir, 'hidden.tar')]);
    const target = path.join(dir, 'hidden.img');
    const r = await deploy([
      path.join(dir, 'hidden.tar.zst'),
      target,
      '--layout',
      PLAIN,
      '--size',
      '256M',
      '--no-verify',
    ]);
    expect(r.exitCode).toBe(1);
    expect(String(r.all)).toMatch(/bad checksum/);
    expect(diff(before, await snapshot(path.join(dir, 'outside'), true))).toEqual([]);
    expect(await leftovers(target)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });
});
