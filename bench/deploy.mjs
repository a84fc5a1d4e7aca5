// bench/deploy: bareon-deploy against the standard tools, writing a 2 GiB GPT disk image (25 % random
// data, the rest holes) onto a fresh sparse image file.
//  1. qcow2:    qemu-img convert -n            vs  bareon-deploy (sha256 verified)   target ratio ≤ 1.25
//     bareon's own reader, and bareon-deploy through qemu-img (BAREON_QCOW2_READER=qemu-img) beside it;
//     then the same pair on an 8 GiB image with 2 GiB of data (how the ratio goes as fixed costs weigh less)
//     and bareon-deploy's fixed cost (the same table, no data) beside node -e 0: their ratio, target ≤ 2.0
//  2. raw:      dd conv=sparse, bmaptool copy  (reference only), and bareon-deploy with bmaptool's
//     bmap of the same image beside bmaptool copy (every range and the image's sha256 verified)
//  3. raw.zst:  zstd -dc | dd conv=sparse      vs  bareon-deploy (sha256 verified)   target ratio ≤ 1.0
//     twice: as one zstd frame (what `zstd FILE` writes) and with a head frame (what bareon-build's
//     raw.zst exporter writes: bareon-deploy then lets zstd write straight onto the target)
//  4. peak RSS of bareon-deploy for a 1 GiB and an 8 GiB raw.zst of both kinds: < 150 MiB, and within 10 %
// Every run writes onto a fresh target after `sync; echo 3 > /proc/sys/vm/drop_caches` (not timed); the
// timed part is `CMD && sync`. Median of 5 timed runs after one untimed warm-up; the rounds are
// interleaved (each method once per round). Needs root (drop_caches). --quick: 1 timed run, no 8 GiB cases.
// --explicit-format: pass --format qcow2 / --format raw.zst to bareon-deploy instead of letting it sniff
// the format from magic bytes.
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { BIN, fmt, run, table } from './lib.mjs';

const FLAGS = ['--quick', '--explicit-format'];
const quick = process.argv.includes('--quick');
const explicitFormat = process.argv.includes('--explicit-format');
const unknown = process.argv.slice(2).filter((a) => !FLAGS.includes(a));
if (unknown.length) {
  console.error(`usage: bench/deploy [--quick] [--explicit-format]   (unknown: ${unknown.join(' ')})`);
  process.exit(2);
}
if (process.getuid() !== 0) {
  console.error('bench/deploy: must run as root (it drops the page cache between runs)');
  process.exit(2);
}
for (const tool of ['qemu-img', 'zstd', 'dd', 'bmaptool', 'sgdisk', 'sha256sum', 'cmp', 'truncate']) {
  try {
    execFileSync('bash', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    console.error(`bench/deploy: ${tool} is not installed`);
    process.exit(2);
  }
}
if (!existsSync(BIN('bareon-deploy'))) {
  console.error('bench/deploy: dist/ is missing; run `npm run build --silent` first');
  process.exit(2);
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const CHUNK = 4 * MiB;
const ROUNDS = quick ? 1 : 5;

// The work dir lives under /var/tmp (real disk, not tmpfs) and goes away on any exit, also on failure or ^C.
const work = mkdtempSync('/var/tmp/bareon-bench-deploy-');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
process.on('uncaughtException', (err) => {
  console.error(`\nbench/deploy: FAILED: ${err.message}`);
  process.exit(1);
});
const p = (name) => path.join(work, name);

const sh = (cmd) =>
  execFileSync('bash', ['-o', 'pipefail', '-c', cmd], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
const sha256 = (file) => sh(`sha256sum ${file}`).split(/\s+/)[0];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dropCaches = () => {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
};
/** A fresh sparse target of `bytes`, with all dirty data written back and the page cache dropped. */
const freshTarget = (file, bytes) => {
  rmSync(file, { force: true });
  sh(`truncate -s ${bytes} ${file}`);
  dropCaches();
};

/**
 * A sparse raw disk image of `bytes`: 4 MiB of random data in every 4th 4 MiB slot (25 % data), then a
 * new GPT with one partition over the rest of the disk (written after the data, so the tables are valid).
 */
function makeImage(file, bytes) {
  sh(`truncate -s ${bytes} ${file}`);
  const slots = bytes / CHUNK;
  for (let slot = 0; slot < slots; slot += 4)
    sh(`dd if=/dev/urandom of=${file} bs=4M count=1 seek=${slot} conv=notrunc status=none`);
  sh(`sgdisk -o -n 1:2048:0 ${file}`);
}

/** Times `cmd && sync` (cmd: argv, or a shell line run with pipefail); returns seconds and the output. */
async function timed(cmd) {
  const started = process.hrtime.bigint();
  const r = await run(cmd, { shell: typeof cmd === 'string' });
  execFileSync('sync');
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, out: r.out };
}

const bareon = (source, target, hex, format) => [
  process.execPath,
  BIN('bareon-deploy'),
  source,
  target,
  '--checksum',
  `sha256:${hex}`,
  '--log-format',
  'json',
  ...(explicitFormat ? ['--format', format] : []),
];
/** The message of bareon's final "wrote … onto …" event, to show that the checksum was verified. */
const wroteLine = (out) =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .find((e) => e.event === 'finished' && /^wrote /.test(e.task))?.task ?? '(no "wrote" event)';

// ---- 1. sources ----------------------------------------------------------------------------------
const SIZE = 2 * GiB;
console.log(
  `bench/deploy${process.argv
    .slice(2)
    .map((a) => ` ${a}`)
    .join('')}: preparing a 2 GiB image (25 % random data, GPT) in ${work}…`,
);
makeImage(p('src.img'), SIZE);
sh('qemu-img convert -O qcow2 src.img src.qcow2');
sh('zstd -T0 -3 -q src.img -o src.img.zst');
// the same image as bareon-build's raw.zst exporter writes it: the first MiB in a frame of its own
const { zstdHeadFrameCompressor } = await import(path.resolve(BIN('bareon-deploy'), '../../stream/zstd-head-frame.js'));
await pipeline(
  createReadStream(p('src.img')),
  zstdHeadFrameCompressor({ headBytes: MiB, totalBytes: SIZE }),
  createWriteStream(p('src.hf.img.zst')),
);
sh('bmaptool create -o src.bmap src.img');
// the same table with no data: what bareon costs before and around the bytes (startup, checks, table work)
sh(
  `truncate -s ${SIZE} empty.img && sgdisk -o -n 1:2048:0 empty.img && qemu-img convert -O qcow2 empty.img empty.qcow2 && rm empty.img`,
);
// A larger image, to show how the ratio goes once the fixed costs weigh less: 8 GiB with 2 GiB of data.
const BIG = 8 * GiB;
if (!quick) {
  makeImage(p('big.img'), BIG);
  sh('qemu-img convert -O qcow2 big.img big.qcow2');
}
const qcowHex = sha256('src.qcow2');
const emptyHex = sha256('empty.qcow2');
const zstHex = sha256('src.img.zst');
const hfHex = sha256('src.hf.img.zst');
const rawHex = sha256('src.img');

// ---- 2. timed deploys ----------------------------------------------------------------------------
const tgt = p('tgt.img');
const methods = [
  {
    key: 'qemu-img',
    format: 'qcow2',
    label: 'qemu-img convert -n -O raw',
    cmd: ['qemu-img', 'convert', '-n', '-f', 'qcow2', '-O', 'raw', p('src.qcow2'), tgt],
  },
  {
    key: 'bareon-qcow2',
    format: 'qcow2',
    label: 'bareon-deploy (sha256 verified)',
    cmd: bareon(p('src.qcow2'), tgt, qcowHex, 'qcow2'),
    check: true,
  },
  {
    key: 'bareon-qcow2-qemu-img',
    format: 'qcow2',
    label: 'bareon-deploy, decoded by qemu-img (sha256 verified)',
    cmd: `BAREON_QCOW2_READER=qemu-img ${bareon(p('src.qcow2'), tgt, qcowHex, 'qcow2').join(' ')}`,
    check: true,
  },
  {
    key: 'qemu-img-empty',
    format: 'qcow2',
    label: 'qemu-img convert, no data (fixed cost)',
    cmd: ['qemu-img', 'convert', '-n', '-f', 'qcow2', '-O', 'raw', p('empty.qcow2'), tgt],
  },
  {
    key: 'bareon-empty',
    format: 'qcow2',
    label: 'bareon-deploy, no data (fixed cost)',
    cmd: bareon(p('empty.qcow2'), tgt, emptyHex, 'qcow2'),
  },
  {
    // the floor of any Node program, beside bareon's fixed cost in the same rounds (its goal: ≤ 2×)
    key: 'node-e0',
    format: '-',
    label: 'node -e 0 (starting Node, nothing else)',
    cmd: [process.execPath, '-e', '0'],
    noRate: true,
  },
  ...(quick
    ? []
    : [
        {
          key: 'qemu-img-8g',
          format: 'qcow2',
          label: 'qemu-img convert -n -O raw, 8 GiB image (2 GiB data)',
          cmd: ['qemu-img', 'convert', '-n', '-f', 'qcow2', '-O', 'raw', p('big.qcow2'), p('big.tgt.img')],
          target: p('big.tgt.img'),
          size: BIG,
        },
        {
          key: 'bareon-qcow2-8g',
          format: 'qcow2',
          label: 'bareon-deploy, 8 GiB image (sha256 verified)',
          cmd: bareon(p('big.qcow2'), p('big.tgt.img'), sha256('big.qcow2'), 'qcow2'),
          target: p('big.tgt.img'),
          size: BIG,
          reference: p('big.img'),
          check: true,
        },
      ]),
  {
    key: 'dd',
    format: 'raw',
    label: 'dd bs=4M conv=notrunc,sparse',
    cmd: ['dd', `if=${p('src.img')}`, `of=${tgt}`, 'bs=4M', 'conv=notrunc,sparse', 'status=none'],
  },
  {
    key: 'bmaptool',
    format: 'raw',
    label: 'bmaptool copy --bmap',
    cmd: ['bmaptool', 'copy', '--bmap', p('src.bmap'), p('src.img'), tgt],
  },
  {
    key: 'bareon-bmap',
    format: 'raw',
    label: 'bareon-deploy --bmap (ranges and sha256 verified)',
    cmd: [...bareon(p('src.img'), tgt, rawHex, 'raw'), '--bmap', p('src.bmap')],
    check: true,
  },
  {
    key: 'zstd-dd',
    format: 'raw.zst',
    label: 'zstd -dc | dd conv=notrunc,sparse',
    cmd: `zstd -dc ${p('src.img.zst')} | dd of=${tgt} bs=4M conv=notrunc,sparse status=none`,
  },
  {
    key: 'bareon-zst',
    format: 'raw.zst',
    label: 'bareon-deploy, one frame (sha256 verified)',
    cmd: bareon(p('src.img.zst'), tgt, zstHex, 'raw.zst'),
    check: true,
  },
  {
    key: 'zstd-dd-hf',
    format: 'raw.zst',
    label: 'zstd -dc | dd conv=sparse, head frame',
    cmd: `zstd -dc ${p('src.hf.img.zst')} | dd of=${tgt} bs=4M conv=notrunc,sparse status=none`,
  },
  {
    key: 'bareon-hf',
    format: 'raw.zst',
    label: 'bareon-deploy, head frame (sha256 verified)',
    cmd: bareon(p('src.hf.img.zst'), tgt, hfHex, 'raw.zst'),
    check: true,
  },
];

// One untimed warm-up each, then the timed rounds interleaved (every method once per round), so that a
// disk that slows down or speeds up over the minutes weighs on all methods alike.
process.stdout.write('  warm-up:');
for (const m of methods) {
  freshTarget(m.target ?? tgt, m.size ?? SIZE);
  await timed(m.cmd);
  m.runs = [];
  process.stdout.write(` ${m.key}`);
}
process.stdout.write('\n');
for (let i = 0; i < ROUNDS; i++) {
  process.stdout.write(`  round ${i + 1}/${ROUNDS}:`);
  for (const m of methods) {
    freshTarget(m.target ?? tgt, m.size ?? SIZE);
    const r = await timed(m.cmd);
    m.runs.push(r.seconds);
    process.stdout.write(` ${m.key} ${fmt(r.seconds, 2)}s`);
    if (m.check && i === 0) {
      // Target size equals image size, so bareon relocates nothing (no backup-GPT move): byte-identical.
      let same = true;
      try {
        execFileSync('cmp', ['-s', m.reference ?? p('src.img'), m.target ?? tgt]);
      } catch {
        same = false;
      }
      m.verdict = same ? 'OK' : 'MISMATCH';
      m.wrote = wroteLine(r.out);
      if (!same) process.stdout.write(' [cmp MISMATCH]');
    }
  }
  process.stdout.write('\n');
}
for (const m of methods) m.median = median(m.runs);
rmSync(tgt, { force: true });
rmSync(p('big.tgt.img'), { force: true });

// ---- 3. peak RSS ----------------------------------------------------------------------------------
/** Peak RSS in MiB and seconds of one bareon-deploy of `source` onto a fresh target of `bytes`. */
async function measureRss(source, bytes, tag) {
  const target = p(`${tag}.tgt.img`);
  freshTarget(target, bytes);
  const cmd = bareon(p(source), target, sha256(source), 'raw.zst');
  let mib;
  let seconds;
  if (existsSync('/usr/bin/time')) {
    // GNU time's %M: the maximum resident set size of the process (KiB), written to a file so it does not mix with bareon's stderr.
    const out = p(`${tag}.time`);
    ({ seconds } = await timed(['/usr/bin/time', '-o', out, '-f', '%M', ...cmd]));
    mib = Number(sh(`tail -n1 ${out}`).trim()) / 1024;
  } else {
    // lib.mjs's run() polls VmHWM of the child every 50 ms.
    const started = process.hrtime.bigint();
    const r = await run(cmd);
    execFileSync('sync');
    seconds = Number(process.hrtime.bigint() - started) / 1e9;
    mib = r.peakMiB;
  }
  rmSync(target, { force: true });
  return { mib, seconds };
}

/** Peak RSS of bareon-deploy writing a raw.zst of `bytes` virtual size, as one frame and with a head frame. */
async function peakRss(bytes) {
  const tag = `rss-${bytes / GiB}g`;
  makeImage(p(`${tag}.img`), bytes);
  sh(`zstd -T0 -3 -q ${tag}.img -o ${tag}.img.zst`);
  await pipeline(
    createReadStream(p(`${tag}.img`)),
    zstdHeadFrameCompressor({ headBytes: MiB, totalBytes: bytes }),
    createWriteStream(p(`${tag}.hf.img.zst`)),
  );
  rmSync(p(`${tag}.img`));
  const one = await measureRss(`${tag}.img.zst`, bytes, `${tag}-one`);
  const hf = await measureRss(`${tag}.hf.img.zst`, bytes, `${tag}-hf`);
  rmSync(p(`${tag}.img.zst`), { force: true });
  rmSync(p(`${tag}.hf.img.zst`), { force: true });
  return { gib: bytes / GiB, one, hf };
}

console.log(
  `  peak RSS of bareon-deploy (raw.zst, ${existsSync('/usr/bin/time') ? '/usr/bin/time -f %M' : 'VmHWM polled every 50 ms'})…`,
);
const rss = [await peakRss(1 * GiB)];
if (!quick) rss.push(await peakRss(8 * GiB));

// ---- report ---------------------------------------------------------------------------------------
const by = Object.fromEntries(methods.map((m) => [m.key, m]));
const mibs = (m) => (m.noRate ? '' : fmt((m.size ?? SIZE) / MiB / m.median, 0));
const met = (ok) => (ok ? 'met' : 'MISSED');
const qcowRatio = by['bareon-qcow2'].median / by['qemu-img'].median;
const zstRatio = by['bareon-zst'].median / by['zstd-dd'].median;
const hfRatio = by['bareon-hf'].median / by['zstd-dd-hf'].median;
const startRatio = by['bareon-empty'].median / by['node-e0'].median;

console.log(
  `\n2 GiB GPT image, 25 % random data (512 MiB in 128 × 4 MiB), onto a fresh sparse 2 GiB file; ${quick ? '1 timed run' : `median of ${ROUNDS} timed runs`}, page cache dropped before each`,
);
console.log(
  `bareon-deploy: --checksum sha256:… --log-format json${explicitFormat ? ' --format qcow2|raw.zst (--explicit-format)' : ' (format sniffed)'}\n`,
);
console.log(
  table([
    ['source', 'method', 's', 'MiB/s of the disk', 'runs, s'],
    ...methods.map((m) => [m.format, m.label, fmt(m.median, 2), mibs(m), m.runs.map((s) => fmt(s, 2)).join(' ')]),
  ]),
);
console.log('');
console.log(
  table([
    ['ratio', 'value', 'target', ''],
    ['bareon qcow2 / qemu-img convert', fmt(qcowRatio, 2), '≤ 1.25', met(qcowRatio <= 1.25)],
    [
      'bareon qcow2 decoded by qemu-img / qemu-img convert',
      fmt(by['bareon-qcow2-qemu-img'].median / by['qemu-img'].median, 2),
      '(the reader it replaced)',
      '',
    ],
    [
      '  the same without the fixed costs of both',
      fmt(
        (by['bareon-qcow2'].median - by['bareon-empty'].median) / (by['qemu-img'].median - by['qemu-img-empty'].median),
        2,
      ),
      '(where the time goes)',
      '',
    ],
    ...(quick
      ? []
      : [
          [
            'bareon qcow2 / qemu-img convert, 8 GiB image with 2 GiB data',
            fmt(by['bareon-qcow2-8g'].median / by['qemu-img-8g'].median, 2),
            '(how it scales)',
            '',
          ],
        ]),
    [
      'bareon raw + bmap / bmaptool copy, the same bmap',
      fmt(by['bareon-bmap'].median / by.bmaptool.median, 2),
      '(reference)',
      '',
    ],
    ['bareon raw.zst, head frame / zstd -dc | dd', fmt(hfRatio, 2), '≤ 1.0', met(hfRatio <= 1.0)],
    ['bareon-deploy, no data / node -e 0 (fixed start cost)', fmt(startRatio, 2), '≤ 2.0', met(startRatio <= 2.0)],
    ['bareon raw.zst, one frame / zstd -dc | dd', fmt(zstRatio, 2), '≤ 1.0', met(zstRatio <= 1.0)],
  ]),
);
console.log('');
for (const m of methods.filter((x) => x.check))
  console.log(`correctness ${m.format}: cmp src.img tgt.img ${m.verdict}; bareon: ${m.wrote}`);
console.log(`sha256 src.qcow2 ${qcowHex}\nsha256 src.img.zst ${zstHex}\nsha256 src.hf.img.zst ${hfHex}`);
console.log('');

const rssRows = [];
let rssMet = true;
for (const [kind, key] of [
  ['head frame', 'hf'],
  ['one frame', 'one'],
]) {
  const peaks = rss.map((r) => r[key].mib);
  const under = peaks.every((m) => m < 150);
  const spread = peaks.length > 1 ? Math.max(...peaks) / Math.min(...peaks) - 1 : undefined;
  rssMet &&= under && (spread === undefined || spread <= 0.1);
  rssRows.push(
    ...rss.map((r) => [
      `${kind}, ${r.gib} GiB virtual (${r.gib / 4} GiB data)`,
      fmt(r[key].mib, 0),
      fmt(r[key].seconds, 1),
      '< 150 MiB',
      met(r[key].mib < 150),
    ]),
    spread === undefined
      ? [`${kind}, within 10 % of each other`, '', '', 'skipped (--quick: no 8 GiB case)', '']
      : [`${kind}, 8 GiB vs 1 GiB difference`, `${fmt(spread * 100, 1)} %`, '', '≤ 10 %', met(spread <= 0.1)],
  );
}
console.log(table([['peak RSS of bareon-deploy, raw.zst', 'MiB', 'deploy s', 'target', ''], ...rssRows]));
const allMet =
  qcowRatio <= 1.25 &&
  hfRatio <= 1.0 &&
  zstRatio <= 1.0 &&
  startRatio <= 2.0 &&
  rssMet &&
  methods.every((m) => !m.check || m.verdict === 'OK');
console.log(`\noverall: ${allMet ? 'all targets met' : 'some targets MISSED'}`);
