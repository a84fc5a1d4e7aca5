import type { FileHandle } from 'node:fs/promises';
import { detectContent, parseQcow2Header } from './magic.js';

/** A run of data clusters: `length` bytes at `host` in the qcow2 file are the disk's bytes at `guest`. */
export interface Qcow2Extent {
  host: number;
  guest: number;
  length: number;
}

/**
 * Where a qcow2's data lives, read from its active L1 and L2 tables: the extents sorted by their
 * place in the file, so that one sequential read of the file finds every cluster. Everything not in
 * an extent reads as zeros (unallocated, or a zero cluster). `unsupported` says why bareon's reader
 * leaves the image to qemu-img (compressed clusters, extended L2 entries, encryption).
 */
export interface Qcow2Map {
  virtualSize: number;
  clusterSize: number;
  extents: Qcow2Extent[];
  unsupported?: string;
}

const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const COMPRESSED = 1n << 62n;
const ZERO = 1n;

export class Qcow2FormatError extends Error {}

async function readAt(fh: FileHandle, length: number, position: number, what: string, fileSize: number): Promise<Buffer> {
  if (position + length > fileSize) throw new Qcow2FormatError(`the ${what} at byte ${position} lies past the end of the file (${fileSize} bytes): the qcow2 is truncated or corrupt`);
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  if (bytesRead !== length) throw new Qcow2FormatError(`short read of the ${what} at byte ${position}`);
  return buf;
}

/** What a qcow2 header says about where its tables are. */
export interface Qcow2Geometry {
  version: number;
  virtualSize: number;
  clusterSize: number;
  l1Size: number;
  l1Offset: number;
  /** Why bareon's reader leaves the image to qemu-img, if it does. */
  unsupported?: string;
}

/** Reads the geometry from the first bytes (112 or more) of a qcow2, version 2 or 3. */
export function qcow2Geometry(header: Buffer): Qcow2Geometry {
  if (header.length < 72 || detectContent(header) !== 'qcow2') throw new Qcow2FormatError('not a qcow2 header');
  const { version, virtualSize } = parseQcow2Header(header);
  if (version !== 2 && version !== 3) throw new Qcow2FormatError(`qcow2 version ${version} is unknown`);
  const clusterBits = header.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw new Qcow2FormatError(`cluster_bits ${clusterBits} is out of range`);
  const clusterSize = 2 ** clusterBits;
  const l1Size = header.readUInt32BE(36);
  const geometry: Qcow2Geometry = { version, virtualSize, clusterSize, l1Size, l1Offset: Number(header.readBigUInt64BE(40)) };
  if (header.readUInt32BE(32) !== 0) return { ...geometry, unsupported: 'it is encrypted' };
  if (version === 3) {
    const incompatible = header.readBigUInt64BE(72);
    if (incompatible & (1n << 4n)) return { ...geometry, unsupported: 'it has extended L2 entries (subclusters)' };
    if (incompatible & ~0b1111n) return { ...geometry, unsupported: `it has incompatible features 0x${incompatible.toString(16)}` };
  }
  if (l1Size * (clusterSize / 8) * clusterSize < virtualSize) throw new Qcow2FormatError(`its L1 table (${l1Size} entries) does not cover its ${virtualSize} bytes`);
  return geometry;
}

/** The L2 table offsets of an L1 table, by L1 index (0 where a table is unallocated). */
export function l2Offsets(l1: Buffer): number[] {
  return Array.from({ length: l1.length / 8 }, (_, i) => Number(l1.readBigUInt64BE(i * 8) & OFFSET_MASK));
}

/**
 * The data clusters that L2 table `index` maps, in table order: unallocated and zero clusters are
 * left out. Returns a reason instead where bareon's reader cannot write the image (compressed clusters).
 */
export function l2Clusters(l2: Buffer, index: number, g: Qcow2Geometry): Qcow2Extent[] | { unsupported: string } {
  const entries = g.clusterSize / 8;
  const out: Qcow2Extent[] = [];
  for (let j = 0; j < entries; j++) {
    const entry = l2.readBigUInt64BE(j * 8);
    if (entry === 0n) continue;
    const guest = (index * entries + j) * g.clusterSize;
    if (entry & COMPRESSED) return { unsupported: 'it has compressed clusters' };
    if (g.version === 3 && entry & ZERO) continue;
    const host = Number(entry & OFFSET_MASK);
    if (host === 0) continue;
    if (guest >= g.virtualSize) throw new Qcow2FormatError(`L2 table ${index} maps a cluster past the disk's end (${guest} ≥ ${g.virtualSize})`);
    out.push({ host, guest, length: Math.min(g.clusterSize, g.virtualSize - guest) });
  }
  return out;
}

/** Adds a cluster run to `extents`, merged into the last one where it continues it on disk and in the file. */
export function appendExtent(extents: Qcow2Extent[], e: Qcow2Extent): void {
  const last = extents.at(-1);
  if (last && last.host + last.length === e.host && last.guest + last.length === e.guest) last.length += e.length;
  else extents.push({ ...e });
}

/** Reads the header and the active L1 and L2 tables of a local qcow2 (version 2 or 3). */
export async function readQcow2Map(fh: FileHandle): Promise<Qcow2Map> {
  const fileSize = (await fh.stat()).size;
  const g = qcow2Geometry(await readAt(fh, Math.min(fileSize, 112), 0, 'header', fileSize));
  const map: Qcow2Map = { virtualSize: g.virtualSize, clusterSize: g.clusterSize, extents: [] };
  if (g.unsupported) return { ...map, unsupported: g.unsupported };
  const l1 = await readAt(fh, g.l1Size * 8, g.l1Offset, 'L1 table', fileSize);

  const extents: Qcow2Extent[] = [];
  for (const [i, l2Offset] of l2Offsets(l1).entries()) {
    if (l2Offset === 0) continue;
    const clusters = l2Clusters(await readAt(fh, g.clusterSize, l2Offset, `L2 table ${i}`, fileSize), i, g);
    if (!Array.isArray(clusters)) return { ...map, unsupported: clusters.unsupported };
    for (const { host, guest, length } of clusters) {
      if (host + length > fileSize) throw new Qcow2FormatError(`the cluster for disk byte ${guest} lies past the end of the file: the qcow2 is truncated`);
      appendExtent(extents, { host, guest, length });
    }
  }
  extents.sort((a, b) => a.host - b.host);
  return { ...map, extents };
}
