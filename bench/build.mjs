// bench/build: bareon-build against the standard tools, side by side, in one run.
//  1. cold build (--no-cache, base image already bootstrapped) vs unchanged rebuild, and their ratio
//  2. tar.zst export of the same container: bareon vs `docker export | zstd -T0`
//  3. peak RSS of the bareon process during that export
// Profile: profiles/debian-bootable.yaml with outputs [tar.zst] (an ~800 MB root filesystem).
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, fmt, REPO, run, table } from './lib.mjs';

const work = await mkdtemp(path.join(tmpdir(), 'bareon-bench-build-'));
const profile = path.join(work, 'bench-build.yaml');
const source = await readFile(path.join(REPO, 'profiles/debian-bootable.yaml'), 'utf8');
await writeFile(
  profile,
  source.replace(/^name: .*$/m, 'name: bench-build').replace(/^outputs: .*$/m, 'outputs: [tar.zst]'),
);
const out = path.join(work, 'out');
const build = (args, outDir = out) =>
  run([process.execPath, BIN('bareon-build'), profile, '-o', outDir, '--log-format', 'json', ...args]);
const exportSeconds = (stdout) => {
  const ev = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((e) => e.event === 'finished' && /^export bench-build\.tar\.zst/.test(e.task));
  return ev ? ev.duration_ms / 1000 : NaN;
};

console.log('bench/build: warming up (bootstrap base, first build)…');
await build([]);

const cold = await build(['--no-cache']);
const rebuild = await build([]);
const rebuildExport = await build([], path.join(work, 'fresh-out')); // same image, new output dir: steps cached, export redone

const manifest = JSON.parse(await readFile(path.join(out, 'bench-build.manifest.json'), 'utf8'));
const image = manifest.image;
const container = (await run(['docker', 'create', image, '/bin/true'])).out.trim();
const rawBytes = Number((await run(`docker export ${container} | wc -c`, { shell: true })).out.trim());

const shellRuns = [];
const bareonRuns = [];
const rssRuns = [];
for (let i = 0; i < 3; i++) {
  shellRuns.push(
    (await run(`docker export ${container} | zstd -T0 -3 -q -c > ${work}/shell.tar.zst`, { shell: true })).seconds,
  );
  await rm(path.join(work, 'again'), { recursive: true, force: true });
  const r = await build([], path.join(work, 'again'));
  bareonRuns.push(exportSeconds(r.out));
  rssRuns.push(r.peakMiB);
}
await run(['docker', 'rm', '-f', container]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const shellS = median(shellRuns);
const bareonS = median(bareonRuns);
const MiB = 2 ** 20;
const ours = (await stat(path.join(work, 'again', 'bench-build.tar.zst'))).size;
const theirs = (await stat(path.join(work, 'shell.tar.zst'))).size;

console.log(`\nroot filesystem: ${fmt(rawBytes / MiB, 0)} MiB as docker export\n`);
console.log(
  table([
    ['measure', 'bareon', 'standard tools', 'ratio', 'target'],
    [
      'cold build (--no-cache) / unchanged rebuild, s',
      `${fmt(cold.seconds)} / ${fmt(rebuild.seconds, 2)}`,
      '',
      `${fmt((rebuild.seconds / cold.seconds) * 100, 1)} %`,
      '≤ 5 %',
    ],
    [
      'unchanged rebuild into a new output dir (export redone), s',
      fmt(rebuildExport.seconds, 2),
      '',
      `${fmt((rebuildExport.seconds / cold.seconds) * 100, 1)} %`,
      '',
    ],
    ['tar.zst export, s (median of 3)', fmt(bareonS, 2), `${fmt(shellS, 2)} (docker export | zstd -T0 -3)`, '', ''],
    [
      'tar.zst export throughput, MiB/s of rootfs',
      fmt(rawBytes / MiB / bareonS, 0),
      fmt(rawBytes / MiB / shellS, 0),
      `${fmt(shellS / bareonS, 2)}×`,
      '≥ 0.9×',
    ],
    ['tar.zst size, MiB', fmt(ours / MiB), fmt(theirs / MiB), '', '(bareon drops apt lists etc.)'],
    ['peak RSS of bareon during export, MiB (median of 3)', fmt(median(rssRuns), 0), '', '', '< 200 MiB'],
  ]),
);
console.log(
  `\nruns: shell ${shellRuns.map((s) => fmt(s, 2)).join(' ')}; bareon ${bareonRuns.map((s) => fmt(s, 2)).join(' ')}; rss ${rssRuns.map((s) => fmt(s, 0)).join(' ')}`,
);
await rm(work, { recursive: true, force: true });
