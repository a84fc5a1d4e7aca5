import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { makeBaseImages, mutateCase, type BaseImage } from '../fuzz/qcow2-mutate.js';

/**
 * Differential fuzzing of bareon's qcow2 readers against qemu-img: honest small images, mutated
 * (header fields, L1/L2 entries, truncation, header bits), go through bareon-deploy (from the file
 * and over http) and through `qemu-img convert`. Whatever qemu-img refuses, bareon refuses; whatever
 * both accept gives the same disk; bareon never crashes, never exits other than 0, 1 or 2, and stays
 * under a memory bound. bareon may refuse what qemu-img reads only for the reasons in STRICTER.
 *
 * BAREON_FUZZ_CASES=N and BAREON_FUZZ_SEED=S run more cases or replay a run; every case that ever
 * failed is in test/fuzz/seeds/qcow2.json and runs first. BAREON_FUZZ_BIN fuzzes another build of
 * bareon-deploy (an older checkout's dist/src/cli/bareon-deploy.js, say).
 */
const CASES = Number(process.env.BAREON_FUZZ_CASES ?? 50);
const SEED = Number(process.env.BAREON_FUZZ_SEED ?? 20261206);
const MiB = 2 ** 20;
const TARGET = 64 * MiB;
const RSS_LIMIT_KIB = 300 * 1024;
/** Where bareon is stricter than qemu-img, on purpose (docs/deploy.md): qemu-img reads zeros past the end of the file or in the header cluster, follows backing files, reads dirty images. */
const STRICTER = [
  /lies past the end of the file|the qcow2 is truncated/,
  /lies in the header cluster/,
  /backing file|external file|marked (dirty|corrupt)/,
  /larger than bareon can address/,
  /but target \S+ has/,
];

let dir: string;
let server: http.Server;
let base: string;
let bases: BaseImage[];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-fuzz-qcow2-'));
  bases = await makeBaseImages(dir);
  server = http.createServer(async (req, res) => {
    const file = path.join(dir, path.basename(req.url!));
    res.writeHead(200, { 'content-length': (await stat(file)).size });
    createReadStream(file, { highWaterMark: 40_000 }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** qemu-img's verdict: the raw disk it writes, or its refusal. */
async function qemuImg(image: string, out: string): Promise<{ ok: true; size: number } | { ok: false; why: string }> {
  const info = await execa('qemu-img', ['info', '-f', 'qcow2', '--output=json', image], {
    reject: false,
    timeout: 30_000,
  });
  if (info.exitCode !== 0) return { ok: false, why: info.stderr };
  const size = (JSON.parse(info.stdout) as { 'virtual-size': number })['virtual-size'];
  // larger than the target: bareon refuses it (STRICTER); qemu-img's verdict is not needed
  if (size > TARGET) return { ok: true, size };
  const r = await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, out], {
    reject: false,
    timeout: 60_000,
  });
  return r.exitCode === 0 ? { ok: true, size } : { ok: false, why: r.stderr };
}

/** Runs bareon-deploy (no verification; a fresh target file) under /usr/bin/time for its peak RSS. */
async function bareonDeploy(source: string, target: string): Promise<{ code: number; out: string; rssKiB: number }> {
  const r = await execa(
    '/usr/bin/time',
    [
      '-f',
      'maxrss-kib=%M',
      process.execPath,
      process.env.BAREON_FUZZ_BIN ?? BIN.deploy,
      source,
      target,
      '--size',
      String(TARGET),
      '--no-verify',
    ],
    {
      reject: false,
      all: true,
      timeout: 120_000,
      env: { BAREON_PLUGIN_PATH: '' },
    },
  );
  const rss = /maxrss-kib=(\d+)/.exec(String(r.all));
  return {
    code: r.exitCode ?? -1,
    out: String(r.all).replace(/(Command exited with non-zero status \d+\n)?maxrss-kib=\d+\n?$/, ''),
    rssKiB: Number(rss?.[1] ?? 0),
  };
}

async function sameDisk(ref: string, target: string, size: number): Promise<boolean> {
  return (await execa('cmp', ['-n', String(size), ref, target], { reject: false })).exitCode === 0;
}

interface Tally {
  cases: number;
  qemuAccepted: number;
  qemuRefused: number;
  bareonAccepted: number;
  bareonRefused: number;
  stricter: number;
  failures: string[];
}

/** Runs one case through qemu-img and bareon (file, then http); returns what went wrong, if anything. */
async function runCase(seed: number, index: number, tally: Tally): Promise<void> {
  const image = path.join(dir, `case-${seed}-${index}.qcow2`);
  const did = await mutateCase(bases, seed, index, image);
  const label = `seed ${seed} case ${index} (${did})`;
  const ref = `${image}.ref`;
  const q = await qemuImg(image, ref);
  tally.cases++;
  if (q.ok) tally.qemuAccepted++;
  else tally.qemuRefused++;
  for (const over of ['file', 'http'] as const) {
    const target = `${image}.${over}.target`;
    const b = await bareonDeploy(over === 'file' ? image : `${base}/${path.basename(image)}`, target);
    const fail = (why: string) =>
      tally.failures.push(`${label} over ${over}: ${why}\n${b.out.split('\n').slice(-6).join('\n')}`);
    if (b.code === 0) tally.bareonAccepted++;
    else tally.bareonRefused++;
    if (![0, 1, 2].includes(b.code)) fail(`exit ${b.code}`);
    if (/TypeError|RangeError|ReferenceError|\n\s+at (file:|node:|async )|Unhandled/.test(b.out)) fail('a crash');
    if (b.rssKiB > RSS_LIMIT_KIB) fail(`peak RSS ${b.rssKiB} KiB over ${RSS_LIMIT_KIB}`);
    if (!q.ok && b.code === 0) fail(`bareon wrote what qemu-img refuses: ${q.why.trim().split('\n').pop()}`);
    if (q.ok && b.code === 0 && !(await sameDisk(ref, target, q.size)))
      fail("bareon wrote a disk other than qemu-img's");
    if (q.ok && b.code !== 0) {
      if (STRICTER.some((re) => re.test(b.out))) tally.stricter++;
      else fail('bareon refused what qemu-img reads, for no documented reason');
    }
    await rm(target, { force: true });
  }
  await rm(image, { force: true });
  await rm(ref, { force: true });
}

describe('differential fuzzing of the qcow2 readers against qemu-img', () => {
  it(`agrees with qemu-img on the recorded failures and ${CASES} random cases (seed ${SEED})`, async () => {
    const seeds = JSON.parse(await readFile(path.join(import.meta.dirname, '../fuzz/seeds/qcow2.json'), 'utf8')) as {
      seed: number;
      case: number;
      found: string;
    }[];
    const tally: Tally = {
      cases: 0,
      qemuAccepted: 0,
      qemuRefused: 0,
      bareonAccepted: 0,
      bareonRefused: 0,
      stricter: 0,
      failures: [],
    };
    const started = Date.now();
    console.log(
      `qcow2 fuzz: seed ${SEED}, ${seeds.length} recorded cases, then ${CASES} random ones (BAREON_FUZZ_SEED=${SEED} BAREON_FUZZ_CASES=${CASES} replays them)`,
    );
    for (const s of seeds) await runCase(s.seed, s.case, tally);
    for (let i = 0; i < CASES; i++) await runCase(SEED, i, tally);
    console.log(
      `qcow2 fuzz: ${tally.cases} cases in ${((Date.now() - started) / 1000).toFixed(1)} s; qemu-img accepted ${tally.qemuAccepted}, refused ${tally.qemuRefused}; ` +
        `bareon runs accepted ${tally.bareonAccepted}, refused ${tally.bareonRefused} (${tally.stricter} of them stricter than qemu-img, as documented); ` +
        `failures ${tally.failures.length}`,
    );
    expect(tally.failures, tally.failures.join('\n\n')).toEqual([]);
  });
});
