import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BareonError,
  ValidationError,
  definePlugin,
  type PluginContext,
  type DeploySource,
  type DiskTarget,
  formatBytes,
  MiB,
} from 'bareon/plugin';
import {
  checkSourceDigest,
  expectedDigest,
  growLastPartition,
  writeQcow2Direct,
  writeQcow2Stream,
  writeZstdDirect,
  deployTarget,
  requireSource,
  decompressor,
  parseQcow2Header,
  qcow2Window,
  readQcow2Head,
  qcow2Geometry,
  Qcow2FormatError,
  readQcow2Map,
  type Qcow2Map,
  HashMeter,
  DiskWriter,
  writeSynced,
  writeDiskStream,
  sourceBmap,
  writeBmapImage,
  type SourceBmap,
} from 'bareon/stream';
import { HostExecutor, reservedBytes } from 'bareon/disk';

/** Hashes a stream to its end. */
async function hashStream(stream: Readable, signal: AbortSignal): Promise<{ sha256: string; size: number }> {
  const meter = new HashMeter();
  await pipeline(
    stream,
    meter,
    async function* (src) {
      for await (const _ of src);
    },
    { signal },
  );
  return { sha256: meter.sha256, size: meter.size };
}

/** Waits for every promise to settle, then fails with the first failure, if any. */
async function settleAll<T extends readonly unknown[]>(
  promises: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as never;
}

/** A raw image, compressed or not, streamed onto the disk: hashed in flight, the first MiB written last. */
async function writeRawStream(
  ctx: PluginContext,
  source: DeploySource,
  target: DiskTarget,
): Promise<{ length: number; head: Buffer }> {
  if (source.compression === 'zst') {
    ctx.log(
      source.headFrame
        ? `head frame: zstd writes the image straight onto ${target.path}; its first ${formatBytes(source.headFrame.size)} wait in memory for the checksum`
        : `one zstd frame: zstd and dd write the image straight onto ${target.path}; its first MiB waits in memory for the checksum`,
    );
    const direct = await writeZstdDirect(source, target, ctx.progress, ctx.signal);
    checkSourceDigest(source, ctx.objects.deploy!.verify, direct.digest);
    await writeSynced(target.path, direct.head);
    return direct;
  }
  return writeDiskStream(source, target, {
    stages: source.compression ? [decompressor(source.compression, ctx.signal, source.uri)] : [],
    verify: ctx.objects.deploy!.verify,
    progress: ctx.progress,
    signal: ctx.signal,
  });
}

/**
 * A raw image file with a block map: only the mapped ranges are read and written, each checked
 * against the map's sha256 as it ends, the first MiB (with the zeros between its ranges) last. An
 * image file target reads zeros between the ranges (its old blocks are punched out, or zeroed where
 * its filesystem cannot punch); a block device keeps its old content there, as with bmaptool copy.
 * The whole image's sha256 is checked too (hashing zeros between the ranges) unless the map's own
 * sha256 comes from the manifest that gives the image's and every range carries a sha256.
 */
async function writeRawBmap(
  ctx: PluginContext,
  source: DeploySource,
  target: DiskTarget,
  sb: SourceBmap,
): Promise<{ length: number; head: Buffer }> {
  const verify = ctx.objects.deploy!.verify;
  const imageSize = sb.map.imageSize;
  let zeroBelow = 0;
  // the first MiB is written whole, zeros and all; past it, an image file's old blocks go
  const end = Math.min(target.zeroFrom, imageSize);
  if (target.kind === 'file' && end > MiB) {
    const punched = await target.executor.run(
      ['fallocate', '--punch-hole', '--keep-size', '--offset', String(MiB), '--length', String(end - MiB), target.path],
      { allowFailure: true },
    );
    if (punched.exitCode === 0) ctx.log(`punched out the old blocks of ${target.path} up to ${formatBytes(end)}`);
    else {
      zeroBelow = end;
      ctx.log(`${target.path}: its filesystem cannot punch holes; zeros are written between the mapped ranges`);
    }
  }
  ctx.log(
    `bmap ${sb.file} (${sb.from}): ${sb.map.ranges.length} ranges, ${formatBytes(sb.mapped)} of ${formatBytes(imageSize)} mapped${target.kind === 'block' ? '; the blocks it leaves out keep their old content' : ''}`,
  );
  // a map the manifest pins checks every byte through its ranges' sha256, unless a range has none
  const unchecked = sb.map.ranges.some((r) => !r.sha256);
  const digest = verify && source.sha256 !== undefined && (!sb.fromManifest || unchecked);
  const written = await writeBmapImage(source.file!, sb, target, source.uri, {
    holdHead: MiB,
    digest,
    zeroBelow,
    progress: ctx.progress,
    signal: ctx.signal,
  });
  if (written.digest) checkSourceDigest(source, verify, written.digest);
  await writeSynced(target.path, written.head);
  return written;
}

/**
 * qcow2: a remote one is written as it arrives when its tables come before their clusters (as
 * qemu-img writes them); otherwise, and from stdin, it is spooled first. bareon's reader then writes
 * it in one hashed pass over the file; images it leaves to qemu-img (compressed clusters, subclusters)
 * and BAREON_QCOW2_READER=qemu-img go through `qemu-img convert`, the format always given. Whatever
 * decides that an image is readable ran in validate for a local file (or here, on the spooled file,
 * before the target is written); a stream's L2 tables are checked as they pass.
 */
async function writeQcow2(
  ctx: PluginContext,
  source: DeploySource,
  target: DiskTarget,
  checkedMap: Qcow2Map | undefined,
): Promise<{ length: number; head: Buffer }> {
  const verify = ctx.objects.deploy!.verify;
  let file = source.file;
  let spooled: { sha256: string; size: number } | undefined;
  if (!file && /^https?:\/\//.test(source.uri) && !process.env.BAREON_QCOW2_READER) {
    ctx.log(`${source.uri}: its clusters are written as it arrives, each after the table that maps it`);
    const streamed = await writeQcow2Stream(await source.open(ctx.signal), target, {
      holdHead: MiB,
      progress: ctx.progress,
      signal: ctx.signal,
      size: source.size,
    }).catch((err) => {
      if (err instanceof Qcow2FormatError) throw new BareonError(`source ${source.uri}: ${err.message}`);
      throw err;
    });
    if (streamed.written) {
      ctx.progress.done();
      checkSourceDigest(source, verify, streamed.digest);
      await writeSynced(target.path, streamed.head);
      return { length: streamed.virtualSize, head: streamed.head };
    }
    ctx.log(`${source.uri} cannot be written as it arrives (${streamed.why}): fetching it again, into a file`);
  }
  if (!file) {
    file = `${await target.scratchDir()}/source.qcow2`;
    ctx.log(`spooling ${source.uri} to ${file} (qcow2 is not sequential)`);
    const meter = new HashMeter();
    await pipeline(
      [
        await source.open(ctx.signal),
        meter,
        new DiskWriter(file, { flags: 'w', zeroFrom: 0, truncate: true }),
      ] as never,
      { signal: ctx.signal },
    );
    spooled = { sha256: meter.sha256, size: meter.size };
  }
  let map = checkedMap;
  if (!map) {
    // judged here, at run time: the target may hold what a stream attempt wrote, so no "nothing was written"
    map = await qcow2Map(file, source.uri)
      .then(async (m) => {
        await qemuImgOpens(m, file, source.uri);
        return m;
      })
      .catch((err: unknown) => {
        if (err instanceof ValidationError)
          throw new BareonError(err.message, { hint: 'qemu-img check shows what is wrong with the image' });
        throw err;
      });
  }
  const reader = map.unsupported
    ? `qemu-img (bareon's reader skips it: ${map.unsupported})`
    : process.env.BAREON_QCOW2_READER === 'qemu-img'
      ? 'qemu-img (BAREON_QCOW2_READER)'
      : undefined;
  if (!reader) {
    const direct = await writeQcow2Direct(file, map, target, {
      holdHead: MiB,
      progress: ctx.progress,
      signal: ctx.signal,
    });
    ctx.progress.done();
    ctx.log(
      `read ${file} ${direct.uncached ? 'past the page cache (O_DIRECT)' : 'through the page cache (its filesystem takes no O_DIRECT reads)'}`,
    );
    checkSourceDigest(source, verify, spooled ?? direct.digest);
    await writeSynced(target.path, direct.head);
    return { length: map.virtualSize, head: direct.head };
  }
  ctx.log(`qcow2 decoded by ${reader}`);
  // hashed beside the conversion, not before it
  const digest = spooled
    ? Promise.resolve(spooled)
    : hashStream(createReadStream(file, { highWaterMark: 4 * MiB }), ctx.signal);
  const virtualSize = map.virtualSize;
  const dst = `driver=raw,offset=${MiB},file.driver=${target.kind === 'block' ? 'host_device' : 'file'},file.filename=${target.path}`;
  ctx.progress.start(virtualSize);
  const { execa } = await import('execa');
  const convert = execa(
    'qemu-img',
    [
      'convert',
      '-p',
      '-n',
      ...(target.zeroFrom === 0 ? ['--target-is-zero'] : []),
      '--image-opts',
      qcow2Window(file, `offset=${MiB}`),
      '--target-image-opts',
      dst,
    ],
    {
      cancelSignal: ctx.signal,
      reject: false,
      all: true,
    },
  );
  let reported = 0;
  convert.stdout!.on('data', (chunk: Buffer) => {
    const m = /\((\d+\.\d+)\/100%\)[^(]*$/.exec(chunk.toString());
    if (!m) return;
    const bytes = Math.floor((Number(m[1]) / 100) * virtualSize);
    ctx.progress.add(bytes - reported);
    reported = bytes;
  });
  const headRead = readQcow2Head(
    target.executor,
    file,
    Math.min(MiB, virtualSize),
    `${await target.scratchDir()}/head.raw`,
    'read the first MiB of the qcow2',
  );
  // all three settle before anything else touches the target
  const [r, got, head] = await settleAll([convert, digest, headRead] as const);
  if (r.isCanceled) throw ctx.signal.reason;
  if (r.exitCode !== 0)
    throw new BareonError(`qemu-img convert of ${source.uri} failed (exit ${r.exitCode})`, {
      details: String(r.all).split('\r').pop(),
    });
  ctx.progress.done();
  checkSourceDigest(source, verify, got);
  await writeSynced(target.path, head);
  return { length: virtualSize, head };
}

const MALFORMED_HINT =
  'nothing was written; qemu-img check shows what is wrong, and qemu-img convert -O qcow2 rewrites an image it can read';

/** The data clusters of a local qcow2, its tables checked as qemu-img checks them. */
async function qcow2Map(file: string, uri: string): Promise<Qcow2Map> {
  const fh = await open(file, 'r');
  try {
    return await readQcow2Map(fh);
  } catch (err) {
    if (err instanceof Qcow2FormatError)
      throw new ValidationError(`source ${uri}: ${err.message}`, { hint: MALFORMED_HINT });
    throw err;
  } finally {
    await fh.close();
  }
}

/**
 * Where bareon's reader leaves an image (or part of its checks) to qemu-img, qemu-img must open it
 * before anything is written: an image only qemu-img could judge fails here, not after the target was touched.
 */
async function qemuImgOpens(map: Qcow2Map, file: string, uri: string): Promise<void> {
  if (!map.unsupported && !map.qemuCheck) return;
  const { execa } = await import('execa');
  const r = await execa('qemu-img', ['info', '-f', 'qcow2', '--output=json', file], { reject: false, all: true });
  if (r.exitCode !== 0) {
    throw new ValidationError(
      `source ${uri}: qemu-img cannot open it (bareon leaves ${map.qemuCheck ?? 'it'} to qemu-img): ${String(r.all).trim().split('\n').pop()}`,
      { hint: MALFORMED_HINT },
    );
  }
}

/** Checks a qcow2's header as qemu-img does (and that bareon can address its size), from the source's first bytes. */
function checkQcow2Header(source: DeploySource): void {
  try {
    qcow2Geometry(source.head);
  } catch (err) {
    if (err instanceof Qcow2FormatError)
      throw new ValidationError(`source ${source.uri}: ${err.message}`, { hint: MALFORMED_HINT });
    throw err;
  }
}

/** Writes a whole-disk image (raw, raw.gz/xz/zst or qcow2) onto the target, verified, then relocates the backup GPT and optionally grows. */
export default definePlugin({
  reads: ['source', 'disks', 'deploy', 'reservations'],
  writes: ['disks'],
  summary:
    'writes a whole-disk image (raw, raw.gz, raw.xz, raw.zst, qcow2) onto a disk, sha256-verified in flight, first MiB last',
  async validate(objects): Promise<{ map?: Qcow2Map; bmap?: SourceBmap } | undefined> {
    let checked: { map?: Qcow2Map; bmap?: SourceBmap } | undefined;
    const source = requireSource(objects, 'disk-image');
    if (source.content !== 'disk')
      throw new ValidationError(`disk-image deploys whole-disk images; ${source.uri} is ${source.format}`);
    const target = deployTarget(objects, 'disk-image');
    if (source.format === 'qcow2') {
      const h = parseQcow2Header(source.head);
      if (h.backingFile)
        throw new ValidationError(
          `source ${source.uri}: the qcow2 has a backing file; bareon refuses qcow2 images that point at other files`,
          { hint: 'flatten it: qemu-img convert -O qcow2 in.qcow2 flat.qcow2' },
        );
      if (h.externalDataFile)
        throw new ValidationError(
          `source ${source.uri}: the qcow2 keeps its data in an external file; bareon refuses it`,
          { hint: 'flatten it: qemu-img convert -O qcow2 in.qcow2 flat.qcow2' },
        );
      if (h.dirty || h.corrupt)
        throw new ValidationError(`source ${source.uri}: the qcow2 is marked ${h.corrupt ? 'corrupt' : 'dirty'}`, {
          hint: 'qemu-img check -r all on a copy',
        });
      checkQcow2Header(source);
      if (source.file) {
        const map = await qcow2Map(source.file, source.uri);
        await qemuImgOpens(map, source.file, source.uri);
        // read while validating, so that a malformed image fails before anything is written
        checked = { map };
      }
    }
    // read and checked here, so that a bad or mismatched map stops the run before anything is written
    const bmap = await sourceBmap(source);
    if (bmap) checked = { bmap };
    if (source.virtualSize !== undefined && source.virtualSize > target.size) {
      throw new ValidationError(
        `source ${source.uri} is ${formatBytes(source.virtualSize)} but target ${target.path} has ${formatBytes(target.size)}`,
        { hint: 'use a larger disk, or --size for an image file' },
      );
    }
    return checked;
  },
  async describe(objects) {
    const source = objects.source!;
    const target = objects.disks![0];
    const bmap = await sourceBmap(source);
    if (bmap)
      return [
        `write raw ${source.uri} (${formatBytes(bmap.map.imageSize)}) onto ${target.path} (${formatBytes(target.size)}): only the ${bmap.map.ranges.length} ranges (${formatBytes(bmap.mapped)}) that bmap ${bmap.file} maps`,
        `verify each range's sha256 from the bmap${objects.deploy!.verify && source.sha256 && !bmap.fromManifest ? `, and sha256 ${source.sha256} of the whole image` : ''}; the first MiB is written last`,
        target.kind === 'block'
          ? 'the blocks the map leaves out keep their old content (as with bmaptool copy)'
          : 'the blocks the map leaves out read as zeros',
        ...(objects.deploy!.grow ? ['grow the last partition and its filesystem to the end of the disk'] : []),
      ];
    const digest = expectedDigest(source);
    return [
      `write ${source.format} ${source.uri}${source.virtualSize ? ` (${formatBytes(source.virtualSize)})` : ''} onto ${target.path} (${formatBytes(target.size)}) from offset 0`,
      `verify ${objects.deploy!.verify && digest ? `${digest.algorithm} ${digest.hex}` : 'off (--no-verify)'}; the first MiB is written last`,
      `zeros ${target.zeroFrom === 0 ? 'skipped (the target reads back zeros)' : target.zeroFrom < target.size ? `skipped from ${formatBytes(target.zeroFrom)} on (the extended part)` : 'written (the target may hold old data)'}`,
      ...(objects.deploy!.grow ? ['grow the last partition and its filesystem to the end of the disk'] : []),
    ];
  },
  async run(ctx) {
    const source = requireSource(ctx.objects, 'disk-image');
    const target = deployTarget(ctx.objects, 'disk-image');
    await target.prepare();
    target.imageEnd = source.virtualSize;
    const bmap = ctx.checked?.bmap;
    const { length: written, head } =
      source.format === 'qcow2'
        ? await writeQcow2(ctx, source, target, ctx.checked?.map)
        : bmap
          ? await writeRawBmap(ctx, source, target, bmap)
          : await writeRawStream(ctx, source, target);
    target.imageEnd = written;
    const ex = new HostExecutor(ctx.signal);
    if (head.subarray(512, 520).toString('latin1') === 'EFI PART' && written < target.size) {
      await ex.run(['sgdisk', '--move-second-header', target.path], {
        step: 'move the backup GPT to the end of the disk',
        onLine: ctx.log,
      });
    }
    let grown = '';
    if (ctx.objects.deploy!.grow) {
      // partitions reserved during plan (a config drive) go at the end: leave them the room
      const g = await growLastPartition(ex, ctx.cleanup, target.path, ctx.log, reservedBytes(ctx.objects));
      grown = `, partition ${g.partition} grown ${formatBytes(g.from)} → ${formatBytes(g.to)}${g.fs ? ` (${g.fs})` : ''}`;
    }
    const digest = ctx.objects.deploy!.verify && expectedDigest(source);
    const verified = digest ? `, ${digest.algorithm} verified` : '';
    ctx.setTitle(
      `wrote ${source.format} onto ${target.path}: ${formatBytes(written)}${bmap ? ` (${formatBytes(bmap.mapped)} mapped by its bmap, every range verified${bmap.fromManifest ? ' against the bmap the manifest pins' : verified})` : verified}${grown}`,
    );
  },
});
