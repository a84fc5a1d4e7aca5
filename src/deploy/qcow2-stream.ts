import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Progress } from '../core/plugins/types.js';
import { appendExtent, l2Clusters, l2Offsets, qcow2Geometry, Qcow2FormatError, type Qcow2Extent, type Qcow2Geometry } from '../source/qcow2-map.js';
import { MiB } from '../objects/size.js';
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

/** A table being read from the stream: where it starts in the file, and its bytes so far. */
interface PendingTable {
  at: number;
  buf: Buffer;
  filled: number;
  /** The L2 table's index in the L1 table; -1 for the L1 table itself. */
  index: number;
}

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
 * As with the file reader, the first `holdHead` bytes of the disk are returned instead of written,
 * and below `zeroFrom` the unallocated ranges are written with zeros. Contiguous bytes go out in
 * writes of up to 4 MiB, four in flight while the next gathers. Memory: those runs, the L2
 * tables met, and the clusters they map that have not passed yet.
 */
export async function writeQcow2Stream(
  input: Readable,
  target: { path: string; zeroFrom: number },
  opts: { holdHead: number; progress: Progress; signal: AbortSignal; size?: number },
): Promise<Qcow2StreamResult> {
  const dst = await open(target.path, 'r+');
  const hash = createHash('sha256');
  const extents: Qcow2Extent[] = [];
  /** Data clusters of the L2 tables met, by file offset, until they pass: guest offset and length. */
  const upcoming = new Map<number, { guest: number; length: number }>();
  const tables = new Map<number, PendingTable>();
  let g: Qcow2Geometry | undefined;
  let header: Buffer = Buffer.alloc(0);
  let head = Buffer.alloc(0);
  /** The end of the furthest table or cluster the image needs: a stream ending before it is truncated. */
  let needed = 112;
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

  /** Parses a table once its last byte has passed; returns why the image cannot be written in one pass, if so. */
  const complete = (t: PendingTable, end: number): string | undefined => {
    tables.delete(t.at);
    if (t.index < 0) {
      for (const [i, at] of l2Offsets(t.buf).entries()) {
        if (at === 0) continue;
        if (at % g!.clusterSize) throw new Qcow2FormatError(`its L2 table ${i} is at an unaligned offset ${at}`);
        if (at < end) return `its L2 table ${i} comes before its L1 table in the file`;
        tables.set(at, { at, buf: Buffer.alloc(g!.clusterSize), filled: 0, index: i });
        needed = Math.max(needed, at + g!.clusterSize);
      }
      return undefined;
    }
    const clusters = l2Clusters(t.buf, t.index, g!);
    if (!Array.isArray(clusters)) return clusters.unsupported;
    for (const c of clusters) {
      if (c.host < end) return `L2 table ${t.index} maps clusters stored before it`;
      if (c.host % g!.clusterSize) throw new Qcow2FormatError(`L2 table ${t.index} maps disk byte ${c.guest} to an unaligned offset ${c.host}`);
      upcoming.set(c.host, { guest: c.guest, length: c.length });
      needed = Math.max(needed, c.host + c.length);
      appendExtent(extents, c);
    }
    return undefined;
  };

  try {
    opts.progress.start(opts.size);
    for await (const chunk of input as AsyncIterable<Buffer>) {
      opts.signal.throwIfAborted();
      hash.update(chunk);
      const chunkEnd = pos + chunk.length;
      if (!g) {
        header = Buffer.concat([header, chunk.subarray(0, Math.max(0, 112 - pos))]);
        if (header.length >= 112) {
          g = qcow2Geometry(header);
          if (g.unsupported) return stop(g.unsupported);
          if (g.l1Offset < g.clusterSize || g.l1Offset % g.clusterSize) throw new Qcow2FormatError(`its L1 table offset ${g.l1Offset} is not that of a cluster after the header`);
          head = Buffer.alloc(Math.min(opts.holdHead, g.virtualSize));
          tables.set(g.l1Offset, { at: g.l1Offset, buf: Buffer.alloc(g.l1Size * 8), filled: 0, index: -1 });
          needed = g.l1Offset + g.l1Size * 8;
        }
      }
      if (g) {
        const cs = g.clusterSize;
        // cluster by cluster: each holds a table, data, or nothing that the disk needs
        for (let at = Math.max(pos, 112); at < chunkEnd; ) {
          const clusterStart = at - (at % cs);
          const table = tables.get(clusterStart) ?? (g.l1Size * 8 > cs ? l1Spanning(tables, at) : undefined);
          const to = table ? Math.min(chunkEnd, table.at + table.buf.length, clusterStart + cs) : Math.min(chunkEnd, clusterStart + cs);
          // tables are cluster-aligned (checked as they become known): `at` is never before one's start
          if (table) {
            chunk.copy(table.buf, at - table.at, at - pos, to - pos);
            table.filled += to - at;
            if (table.filled === table.buf.length) {
              const why = complete(table, to);
              if (why) return stop(why);
            }
          } else {
            const data = upcoming.get(clusterStart);
            if (data) {
              const bytes = chunk.subarray(at - pos, Math.min(to, clusterStart + data.length) - pos);
              if (to >= clusterStart + data.length) upcoming.delete(clusterStart);
              await place(bytes, data.guest + (at - clusterStart));
            }
          }
          at = to;
        }
      }
      pos = chunkEnd;
      opts.progress.add(chunk.length);
    }
    await flush();
    await Promise.all(writing);
    if (!g || pos < needed || tables.size) throw new Qcow2FormatError(`the stream ended at byte ${pos}, before byte ${needed} that the image needs: the qcow2 is truncated`);
    await zeroGaps(dst, extents, head.length, Math.min(target.zeroFrom, g.virtualSize), opts.signal);
    return { written: true, digest: { sha256: hash.digest('hex'), size: pos }, head, virtualSize: g.virtualSize };
  } finally {
    await Promise.allSettled(writing);
    await dst.close();
  }
}

/** The L1 table, where it spans several clusters and `at` lies in one past its first. */
function l1Spanning(tables: Map<number, PendingTable>, at: number): PendingTable | undefined {
  for (const t of tables.values()) if (t.index < 0 && at >= t.at && at < t.at + t.buf.length) return t;
  return undefined;
}
