import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Progress } from '../core/progress.js';
import {
  appendExtent,
  checkMappingBudget,
  l2Clusters,
  l2Offsets,
  mappingBudget,
  qcow2Geometry,
  Qcow2FormatError,
  type Qcow2Extent,
  type Qcow2Geometry,
} from '../source/qcow2-map.js';
import { MiB } from '../core/size.js';
import { writevFully } from '../stream/disk-writer.js';
import { holdBack, zeroGaps } from './qcow2-direct.js';

/** Contiguous disk bytes gathered before one writev: the network's small chunks become large writes. */
const RUN = 4 * MiB;
/** Writes in flight before the stream waits for the disk. */
const DEPTH = 4;

/** What a one-pass write of a qcow2 stream gives: the image written, or why the stream cannot be written in one pass. */
export type Qcow2StreamResult =
  | { written: true; digest: { sha256: string; size: number }; head: Buffer; virtualSize: number }
  | { written: false; why: string };

/** A table being read from the stream: where it starts in the file, and its bytes so far (allocated when its first byte arrives). */
interface PendingTable {
  at: number;
  length: number;
  buf?: Buffer;
  filled: number;
  /** The L1 indexes whose L2 table this is (several where L1 entries share one); empty for the L1 table itself. */
  users: number[];
}

/** Where a data cluster goes: every disk position that maps it. */
type ClusterUsers = { guest: number; length: number }[];

/**
 * Writes a qcow2 read front to back from a stream (an http(s) source) onto a target, without
 * spooling it first. qemu-img writes its tables before the clusters they map, so one pass meets
 * the header, the L1 table, then each L2 table, then the data clusters that table maps; those are
 * written at their place on the disk as they pass. The stream is hashed on the way.
 *
 * An image whose tables come after their clusters (possible after in-place edits), or with clusters
 * that bareon's reader leaves to qemu-img (compressed, subclusters, encryption), cannot be written in
 * one pass: the result says why, and the caller spools the source and writes it from the file. What
 * was written until then are bytes of the same image at their place, so that is safe.
 *
 * A table or cluster that several disk positions share is written to each of them, as by qemu-img;
 * tables and clusters are checked as the file reader checks them (qcow2-map.ts), each when it
 * becomes known: the header before anything is written, an L2 table's entries before its clusters.
 *
 * As with the file reader, the first `holdHead` bytes of the disk are returned instead of written,
 * and below `zeroFrom` the unallocated ranges are written with zeros. Contiguous bytes go out in
 * writes of up to 4 MiB, four in flight while the next gathers. Memory: those runs, the L2
 * table being read, and where the clusters mapped but not passed yet go.
 */
export async function writeQcow2Stream(
  input: Readable,
  target: { path: string; zeroFrom: number },
  opts: { holdHead: number; progress: Progress; signal: AbortSignal; size?: number },
): Promise<Qcow2StreamResult> {
  const dst = await open(target.path, 'r+');
  const hash = createHash('sha256');
  const extents: Qcow2Extent[] = [];
  /** Data clusters of the L2 tables met, by file offset, until they pass. */
  const upcoming = new Map<number, ClusterUsers>();
  /** L2 tables named by the L1 table, by file offset, until they pass. */
  const tables = new Map<number, PendingTable>();
  let l1: PendingTable | undefined;
  let g: Qcow2Geometry | undefined;
  let header: Buffer = Buffer.alloc(0);
  let head = Buffer.alloc(0);
  /** The end of the furthest table or cluster the image needs: a stream ending before it is truncated. */
  let needed = 112;
  let mapped = 0;
  let pos = 0;
  /** Disk bytes gathered for the next write, and the writes in flight while they gather. */
  let run: { guest: number; bufs: Buffer[]; length: number } | undefined;
  const writing: Promise<void>[] = [];
  const flush = async () => {
    if (!run) return;
    const write = writevFully(dst, run.bufs, run.guest, run.length);
    write.catch(() => {});
    writing.push(write);
    run = undefined;
    // the stream is not read while this waits, so a few writes stay in flight: waiting on each
    // one would stall the network behind the disk
    while (writing.length > DEPTH) await writing.shift();
  };
  const place = async (bytes: Buffer, at: number) => {
    const [data, guest] = holdBack(head, bytes, at);
    if (!data.length) return;
    if (run && guest === run.guest + run.length) {
      run.bufs.push(data);
      run.length += data.length;
    } else {
      await flush();
      run = { guest, bufs: [data], length: data.length };
    }
    if (run.length >= RUN) await flush();
  };
  const stop = (why: string): Qcow2StreamResult => ({ written: false, why });

  /** Parses a table once its last byte (at `end`) has passed; returns why the image cannot be written in one pass, if so. */
  const complete = (t: PendingTable, end: number): string | undefined => {
    const buf = t.buf!;
    if (t === l1) {
      for (const [i, at] of l2Offsets(buf, g!).entries()) {
        if (at === 0) continue;
        if (at < end) return `its L2 table ${i} comes before its L1 table's end in the file`;
        const table = tables.get(at) ?? { at, length: g!.clusterSize, filled: 0, users: [] };
        table.users.push(i);
        tables.set(at, table);
        needed = Math.max(needed, at + g!.clusterSize);
      }
      return undefined;
    }
    for (const index of t.users) {
      const { clusters, compressed } = l2Clusters(buf, index, g!);
      if (compressed) return 'it has compressed clusters';
      mapped += clusters.length;
      checkMappingBudget(mapped, mappingBudget(opts.size, g!.clusterSize));
      for (const c of clusters) {
        if (c.host < end) return `L2 table ${index} maps clusters stored before it`;
        const users = upcoming.get(c.host) ?? [];
        users.push({ guest: c.guest, length: c.length });
        upcoming.set(c.host, users);
        needed = Math.max(needed, c.host + c.length);
        appendExtent(extents, c);
      }
    }
    return undefined;
  };
  /** Copies the stream's bytes `bytes`, at file offset `at`, into the table `t`; parses it once whole. */
  const fill = (t: PendingTable, bytes: Buffer, at: number): string | undefined => {
    t.buf ??= Buffer.alloc(t.length);
    bytes.copy(t.buf, at - t.at);
    t.filled += bytes.length;
    if (t.filled < t.length) return undefined;
    if (t !== l1) tables.delete(t.at);
    const why = complete(t, t.at + t.length);
    t.buf = undefined;
    return why;
  };

  try {
    opts.progress.start(opts.size);
    for await (const chunk of input as AsyncIterable<Buffer>) {
      opts.signal.throwIfAborted();
      hash.update(chunk);
      const chunkEnd = pos + chunk.length;
      if (!g) {
        // the first cluster whole (header extensions included), once its size is known
        header = Buffer.concat([header, chunk]);
        const clusterBits = header.length >= 24 ? header.readUInt32BE(20) : 0;
        if (
          header.length >= 112 &&
          header.length >= Math.min(2 ** Math.min(Math.max(clusterBits, 9), 21), 2 * 1024 * 1024)
        ) {
          g = qcow2Geometry(header);
          header = Buffer.alloc(0);
          if (g.unsupported) return stop(g.unsupported);
          if (g.qemuCheck) return stop(`qemu-img checks ${g.qemuCheck}`);
          head = Buffer.alloc(Math.min(opts.holdHead, g.virtualSize));
          l1 = { at: g.l1Offset, length: g.l1Size * 8, filled: 0, users: [] };
          needed = g.l1Offset + g.l1Size * 8;
          if (l1.length === 0) l1 = undefined;
        }
      }
      if (g) {
        const cs = g.clusterSize;
        // cluster by cluster: each may hold (part of) a table, data for several disk positions, or nothing the disk needs
        for (let at = Math.max(pos, cs); at < chunkEnd; ) {
          const clusterStart = at - (at % cs);
          let to = Math.min(chunkEnd, clusterStart + cs);
          if (l1 && at < l1.at + l1.length && to > l1.at) {
            // the L1 table starts on a cluster boundary and may end mid-cluster: stop there
            to = Math.min(to, l1.at + l1.length);
            const why = fill(l1, chunk.subarray(at - pos, to - pos), at);
            if (why) return stop(why);
          }
          const table = tables.get(clusterStart);
          if (table) {
            const why = fill(table, chunk.subarray(at - pos, to - pos), at);
            if (why) return stop(why);
          }
          const users = upcoming.get(clusterStart);
          if (users) {
            for (const u of users) {
              const end = Math.min(to, clusterStart + u.length);
              if (end > at) await place(chunk.subarray(at - pos, end - pos), u.guest + (at - clusterStart));
            }
            if (to === clusterStart + cs) upcoming.delete(clusterStart);
          }
          at = to;
        }
      }
      pos = chunkEnd;
      opts.progress.add(chunk.length);
    }
    await flush();
    await Promise.all(writing);
    if (!g)
      throw new Qcow2FormatError(
        `the stream ended at byte ${pos}, before the end of its header: the qcow2 is truncated`,
      );
    if (pos < needed || tables.size || (l1 && l1.filled < l1.length))
      throw new Qcow2FormatError(
        `the stream ended at byte ${pos}, before byte ${needed} that the image needs: the qcow2 is truncated`,
      );
    await zeroGaps(dst, extents, head.length, Math.min(target.zeroFrom, g.virtualSize), opts.signal);
    return { written: true, digest: { sha256: hash.digest('hex'), size: pos }, head, virtualSize: g.virtualSize };
  } finally {
    await Promise.allSettled(writing);
    await dst.close();
  }
}
