import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import type { Progress } from '../core/progress.js';
import { BareonError, ValidationError } from '../core/errors.js';
import { formatBytes } from '../core/size.js';
import type { DeploySource, DiskTarget } from '../objects/index.js';
import { type Bmap, BmapFormatError, bmapCandidates, mappedBytes, parseBmap, rangeBytes } from '../stream/bmap.js';
import { writeFully } from '../stream/disk-writer.js';
import { ChecksumMismatchError } from './checksum.js';

/** The largest bmap file bareon reads: a map of millions of ranges fits. */
const BMAP_MAX = 256 * 1024 * 1024;

/** A block map read and checked for a deploy source. */
export interface SourceBmap {
  file: string;
  /** Who named it: --bmap, a manifest, or found beside the image. */
  from: string;
  /** Its own sha256 was checked against the manifest that lists the image. */
  fromManifest: boolean;
  map: Bmap;
  /** Bytes its ranges cover. */
  mapped: number;
}

/**
 * The block map to deploy a source with, read and checked (its own checksum, its image size
 * against the source's): the one --bmap or the manifest names, else `<file>.bmap` or the file's
 * name without its extensions plus `.bmap` beside a local uncompressed raw image, as bmaptool
 * looks for it. Undefined when there is none, or for sources that take none (compressed, remote,
 * stdin, not raw). A map that is there but unreadable or for another image is a ValidationError.
 */
export async function sourceBmap(source: DeploySource): Promise<SourceBmap | undefined> {
  if (source.bmap === false) return undefined;
  const usable = source.format === 'raw' && source.file !== undefined;
  if (source.bmap && !usable) {
    if (source.bmap.from !== '--bmap') return undefined;
    throw new ValidationError(
      `--bmap: a block map applies to an uncompressed raw image in a local file; ${source.uri} is ${source.format}${source.file ? '' : ' read as a stream'}`,
      { hint: 'drop --bmap; nothing was written' },
    );
  }
  if (!usable) return undefined;
  let file = source.bmap ? source.bmap.file : undefined;
  if (!file) {
    for (const candidate of bmapCandidates(source.file!))
      if ((await stat(candidate).catch(() => undefined))?.isFile()) {
        file = candidate;
        break;
      }
    if (!file) return undefined;
  }
  const from = source.bmap ? source.bmap.from : 'beside the image';
  const hint = 'give the image its own map (bmaptool create IMAGE > IMAGE.bmap), or --no-bmap to write the whole image';
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile())
    throw new ValidationError(`bmap ${file} (${from}): ${st ? 'not a regular file' : 'no such file'}`, { hint });
  if (st.size > BMAP_MAX)
    throw new ValidationError(`bmap ${file}: larger than ${formatBytes(BMAP_MAX)}; bareon reads no map that large`, {
      hint,
    });
  const data = await readFile(file);
  const expected = source.bmap ? source.bmap.sha256 : undefined;
  if (expected) {
    const got = createHash('sha256').update(data).digest('hex');
    if (got !== expected)
      throw new ValidationError(`bmap ${file}: sha256 ${got}, but ${from} records ${expected}`, {
        hint: 'the map changed after the build; nothing was written',
      });
  }
  let map: Bmap;
  try {
    map = parseBmap(data, `bmap ${file}`);
  } catch (err) {
    if (err instanceof BmapFormatError) throw new ValidationError(err.message, { hint });
    throw err;
  }
  if (map.imageSize !== source.size)
    throw new ValidationError(
      `bmap ${file} (${from}) maps an image of ${map.imageSize} bytes, but ${source.uri} has ${source.size}`,
      { hint },
    );
  return { file, from, fromManifest: expected !== undefined, map, mapped: mappedBytes(map) };
}

/** Each read and write of a mapped range moves at most this much. */
const CHUNK = 4 * 1024 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

export interface BmapWriteOptions {
  /** Bytes at the start of the disk kept in memory and returned instead of written (the partition table). */
  holdHead: number;
  /** Hash the whole image as it reads on the target (the mapped bytes, zeros between them) for the source's sha256. */
  digest: boolean;
  /** Below this offset, zeros are written between the mapped ranges (the target may hold old data there). */
  zeroBelow: number;
  progress: Progress;
  signal: AbortSignal;
}

/**
 * Writes the ranges a block map names from a raw image file onto the target at their offsets,
 * with positioned reads (the next chunk read while the last is written), checking each range's
 * sha256 as it ends: a mismatch fails naming the range. The head is held back: the caller writes it
 * after every check passed. With `digest`, the sha256 of the whole image as it now reads on a target
 * that reads zeros between the ranges.
 */
export async function writeBmapImage(
  file: string,
  sb: SourceBmap,
  target: DiskTarget,
  uri: string,
  opts: BmapWriteOptions,
): Promise<{ head: Buffer; length: number; digest?: { sha256: string; size: number } }> {
  const { map } = sb;
  const whole = opts.digest ? createHash('sha256') : undefined;
  const head = Buffer.alloc(Math.min(opts.holdHead, map.imageSize));
  const src = await open(file, 'r');
  const dst = await open(target.path, 'r+');
  try {
    let covered = 0;
    /** The gap up to `end`: hashed as zeros, and zeroed on the target below zeroBelow. */
    const gap = async (end: number) => {
      for (let at = covered; at < end; ) {
        const n = Math.min(CHUNK, end - at);
        whole?.update(ZEROS.subarray(0, n));
        const from = Math.max(at, head.length);
        const to = Math.min(at + n, opts.zeroBelow);
        if (from < to) await writeFully(dst, ZEROS.subarray(0, to - from), from);
        at += n;
      }
      covered = Math.max(covered, end);
    };
    function* chunks() {
      for (const [i, r] of map.ranges.entries()) {
        const { start, end } = rangeBytes(map, r);
        for (let at = start; at < end; at += CHUNK)
          yield { i, at, n: Math.min(CHUNK, end - at), last: at + CHUNK >= end };
      }
    }
    const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
    let which = 0;
    const read = async (c: { at: number; n: number }, buf: Buffer) => {
      for (let got = 0; got < c.n; ) {
        const { bytesRead } = await src.read(buf, got, c.n - got, c.at + got);
        if (!bytesRead)
          throw new BareonError(`source ${uri}: ended at ${c.at + got} bytes, before the bmap's ranges did`);
        got += bytesRead;
      }
      return buf.subarray(0, c.n);
    };
    const it = chunks();
    let next = it.next();
    let pending = next.done ? undefined : { c: next.value, data: read(next.value, buffers[which]) };
    pending?.data.catch(() => {});
    let hash = createHash('sha256');
    opts.progress.start(sb.mapped);
    while (pending) {
      opts.signal.throwIfAborted();
      const { c } = pending;
      const data = await pending.data;
      next = it.next();
      which ^= 1;
      pending = next.done ? undefined : { c: next.value, data: read(next.value, buffers[which]) };
      pending?.data.catch(() => {});
      await gap(c.at);
      hash.update(data);
      whole?.update(data);
      const held = Math.max(0, Math.min(data.length, head.length - c.at));
      if (held) data.copy(head, c.at, 0, held);
      if (held < data.length) await writeFully(dst, data.subarray(held), c.at + held);
      covered = c.at + data.length;
      opts.progress.add(data.length);
      if (c.last) {
        const r = map.ranges[c.i];
        const got = hash.digest('hex');
        hash = createHash('sha256');
        if (r.sha256 && got !== r.sha256) {
          const { start, end } = rangeBytes(map, r);
          throw new ChecksumMismatchError(
            `source ${uri}: range ${r.first}-${r.last} (blocks of ${map.blockSize} bytes, bytes ${start}-${end - 1}) does not match its bmap: sha256 ${got}, ${sb.file} says ${r.sha256}`,
            { hint: 'the image changed after its map was made, or is corrupt; the target was not left bootable' },
          );
        }
      }
    }
    await gap(map.imageSize);
    opts.progress.done();
    await dst.sync();
    return {
      head,
      length: map.imageSize,
      digest: whole ? { sha256: whole.digest('hex'), size: map.imageSize } : undefined,
    };
  } finally {
    await Promise.allSettled([src.close(), dst.close()]);
  }
}
