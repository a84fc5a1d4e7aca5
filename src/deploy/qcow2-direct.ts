import { open, type FileHandle } from 'node:fs/promises';
import type { Progress } from '../core/progress.js';
import { MiB } from '../core/size.js';
import type { Qcow2Extent, Qcow2Map } from '../source/qcow2-map.js';
import { openDirect } from '../stream/direct-read.js';
import { writeFully } from '../stream/disk-writer.js';
import { sha256Hasher } from '../stream/sha256-worker.js';

const CHUNK = 4 * MiB;
/** Reads in flight ahead of the one being hashed: the file is read at the disk's pace, not one request at a time. */
const DEPTH = 3;
const ZEROS = Buffer.alloc(MiB);

/** The disk ranges below `end` that no extent covers, from `start` on. */
function gaps(extents: Qcow2Extent[], start: number, end: number): [number, number][] {
  const out: [number, number][] = [];
  let at = start;
  for (const e of [...extents].sort((a, b) => a.guest - b.guest)) {
    if (e.guest > at) out.push([at, Math.min(e.guest, end)]);
    at = Math.max(at, e.guest + e.length);
    if (at >= end) break;
  }
  if (at < end) out.push([at, end]);
  return out.filter(([a, b]) => b > a);
}

/**
 * Copies what of `data`, the disk's bytes at `guest`, falls in the held-back `head` there; returns
 * the rest and where it goes.
 */
export function holdBack(head: Buffer, data: Buffer, guest: number): [Buffer, number] {
  if (guest >= head.length) return [data, guest];
  const held = Math.min(head.length - guest, data.length);
  data.copy(head, guest, 0, held);
  return [data.subarray(held), guest + held];
}

/**
 * Writes zeros over the disk ranges from `start` to `end` that no extent covers: where the target
 * may hold old data, an unallocated cluster must read back as zeros.
 */
export async function zeroGaps(
  dst: FileHandle,
  extents: Qcow2Extent[],
  start: number,
  end: number,
  signal: AbortSignal,
): Promise<void> {
  for (const [a, b] of gaps(extents, start, end)) {
    for (let at = a; at < b; at += ZEROS.length) {
      signal.throwIfAborted();
      await writeFully(dst, ZEROS.subarray(0, Math.min(ZEROS.length, b - at)), at);
    }
  }
}

/**
 * Writes a local qcow2 onto a target in one sequential pass over the file, read past the page cache
 * where its filesystem allows (`uncached` in the result says whether it did): each chunk is hashed
 * (on a worker thread, for a large file) while the data clusters in it are written at their place on
 * the disk and the next chunks are read. The first `holdHead` bytes of the disk are returned instead
 * of written (the caller writes them once the digest is verified). Below `zeroFrom`, where the target
 * may hold old data, the ranges the image leaves unallocated are written with zeros. Memory: a few
 * 4 MiB buffers, whatever the image's size.
 */
export async function writeQcow2Direct(
  file: string,
  map: Qcow2Map,
  target: { path: string; zeroFrom: number },
  opts: { holdHead: number; progress: Progress; signal: AbortSignal },
): Promise<{ digest: { sha256: string; size: number }; head: Buffer; uncached: boolean }> {
  const source = await openDirect(file, DEPTH + 1, CHUNK);
  const src = source.fh;
  let dst: FileHandle;
  let fileSize: number;
  try {
    fileSize = (await src.stat()).size;
    dst = await open(target.path, 'r+');
  } catch (err) {
    await src.close();
    throw err;
  }
  const head = Buffer.alloc(Math.min(opts.holdHead, map.virtualSize));
  const hash = sha256Hasher(fileSize);
  const slots = source.buffers.map((buf) => ({ buf, writes: Promise.resolve() as Promise<unknown> }));
  const queue: Promise<{ slot: (typeof slots)[number]; pos: number; n: number }>[] = [];
  try {
    opts.progress.start(fileSize);
    let nextPos = 0;
    let nextSlot = 0;
    const issue = () => {
      if (nextPos >= fileSize) return;
      const slot = slots[nextSlot++ % slots.length];
      const pos = nextPos;
      const n = Math.min(CHUNK, fileSize - pos);
      nextPos += n;
      const read = slot.writes
        .then(() => src.read(slot.buf, 0, source.readLength(n), pos))
        .then(({ bytesRead }) => {
          if (bytesRead !== n) throw new Error(`short read at byte ${pos} of ${file}: it changed while being written`);
          return { slot, pos, n };
        });
      read.catch(() => {});
      queue.push(read);
    };
    for (let i = 0; i < DEPTH; i++) issue();
    const { extents } = map;
    let first = 0;
    while (queue.length) {
      opts.signal.throwIfAborted();
      const { slot, pos, n } = await queue.shift()!;
      const chunk = slot.buf.subarray(0, n);
      const writes: Promise<void>[] = [];
      while (first < extents.length && extents[first].host + extents[first].length <= pos) first++;
      for (let k = first; k < extents.length && extents[k].host < pos + n; k++) {
        const e = extents[k];
        const from = Math.max(e.host, pos);
        const to = Math.min(e.host + e.length, pos + n);
        if (to <= from) continue;
        const [data, guest] = holdBack(head, chunk.subarray(from - pos, to - pos), e.guest + (from - e.host));
        if (data.length) writes.push(writeFully(dst, data, guest));
      }
      writes.push(hash.update(chunk));
      slot.writes = Promise.all(writes);
      slot.writes.catch(() => {});
      opts.progress.add(n);
      issue();
    }
    await Promise.all(slots.map((s) => s.writes));
    await zeroGaps(dst, map.extents, head.length, Math.min(target.zeroFrom, map.virtualSize), opts.signal);
    return { digest: { sha256: await hash.digest(), size: fileSize }, head, uncached: source.direct };
  } finally {
    await Promise.allSettled([...queue, ...slots.map((s) => s.writes)]);
    await Promise.allSettled([hash.close(), src.close(), dst.close()]);
  }
}
