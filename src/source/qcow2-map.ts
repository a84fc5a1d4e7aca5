import type { FileHandle } from 'node:fs/promises';
import { detectContent } from './magic.js';

/** A run of data clusters: `length` bytes at `host` in the qcow2 file are the disk's bytes at `guest`. */
export interface Qcow2Extent {
  host: number;
  guest: number;
  length: number;
}

/**
 * Where a qcow2's data lives, read from its active L1 and L2 tables: the extents sorted by their
 * place in the file, so that one sequential read of the file finds every cluster. A table or cluster
 * that several disk positions use appears once per position. Everything not in an extent reads as
 * zeros (unallocated, or a zero cluster). `unsupported` says why bareon's reader leaves the image to
 * qemu-img (compressed clusters, extended L2 entries); `qemuCheck` names what of the image only
 * qemu-img checks (internal snapshots, persistent bitmaps), so that it opens the image before writing.
 */
export interface Qcow2Map {
  virtualSize: number;
  clusterSize: number;
  extents: Qcow2Extent[];
  unsupported?: string;
  qemuCheck?: string;
}

/** The offset bits of an L1 or L2 entry. */
const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const COMPRESSED = 1n << 62n;
const ZERO = 1n;
const INT64_MAX = (1n << 63n) - 1n;
/** qemu's limits (block/qcow2.h): the L1 table, the refcount table, snapshots. */
const MAX_L1_BYTES = 32n << 20n;
const MAX_REFTABLE_BYTES = 8n << 20n;
const MAX_SNAPSHOTS = 65536n;
const SNAPSHOT_HEADER = 40n;
/** The incompatible feature bits qemu knows: dirty, corrupt, external data file, compression type, extended L2. */
const KNOWN_INCOMPATIBLE = 0b11111n;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_CRYPTO = 0x0537be77;
const EXT_BITMAPS = 0x23852875;

/** A qcow2 that qemu-img would refuse, or that bareon refuses where qemu-img would read zeros (tables or clusters past the end of the file, tables in the header cluster). */
export class Qcow2FormatError extends Error {}

async function readAt(
  fh: FileHandle,
  length: number,
  position: number,
  what: string,
  fileSize: number,
): Promise<Buffer> {
  if (position + length > fileSize)
    throw new Qcow2FormatError(
      `the ${what} at byte ${position} lies past the end of the file (${fileSize} bytes): the qcow2 is truncated or corrupt`,
    );
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
  /** L1 entries that map the disk; those past it (the VM state area) are never read. */
  l1Used: number;
  /** Why bareon's reader leaves the image to qemu-img, if it does. */
  unsupported?: string;
  /** What of the image only qemu-img checks (internal snapshots, persistent bitmaps): it must open the image before anything is written. */
  qemuCheck?: string;
}

/** A header field that qemu-img would refuse, named as in the qcow2 spec with its byte offset. */
function bad(field: string, at: number, value: bigint | number | string, why: string): Qcow2FormatError {
  return new Qcow2FormatError(`header field ${field} (byte ${at}) is ${value}: ${why}`);
}

/** A table qemu validates when it opens an image (qcow2_validate_table): its entry count and its offset. */
function checkTable(
  count: [string, number, bigint],
  offset: [string, number, bigint],
  entryBytes: bigint,
  maxBytes: bigint,
  clusterSize: bigint,
): void {
  const [countField, countAt, entries] = count;
  const [offsetField, offsetAt, at] = offset;
  if (entries > maxBytes / entryBytes)
    throw bad(countField, countAt, entries, `the table would exceed qemu-img's limit of ${maxBytes} bytes`);
  if (INT64_MAX - entries * entryBytes < at || at % clusterSize)
    throw bad(offsetField, offsetAt, at, `not a cluster boundary (${clusterSize}-byte clusters)`);
}

/**
 * Reads the geometry from the first bytes of a qcow2 (version 2 or 3) and checks the header as
 * qemu-img does when it opens an image (block/qcow2.c, qcow2_do_open), plus bareon's own limits: a
 * virtual size it can address and an L1 table after the header cluster. Header extensions are
 * checked as far as `header` reaches (give the whole first cluster where possible).
 */
export function qcow2Geometry(header: Buffer): Qcow2Geometry {
  if (header.length < 72 || detectContent(header) !== 'qcow2') throw new Qcow2FormatError('not a qcow2 header');
  const version = header.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw bad('version', 4, version, 'qemu-img and bareon read versions 2 and 3');
  if (version === 3 && header.length < 104) throw new Qcow2FormatError('the version 3 header is cut short');
  const clusterBits = header.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw bad('cluster_bits', 20, clusterBits, 'clusters are 2^9 to 2^21 bytes');
  const clusterSize = 2 ** clusterBits;
  const cs = BigInt(clusterSize);
  const headerLength = version === 3 ? header.readUInt32BE(100) : 72;
  if (headerLength < (version === 3 ? 104 : 72))
    throw bad('header_length', 100, headerLength, 'a version 3 header has 104 bytes or more');
  if (headerLength > clusterSize)
    throw bad('header_length', 100, headerLength, `the header exceeds the first cluster (${clusterSize} bytes)`);
  const backingOffset = header.readBigUInt64BE(8);
  if (backingOffset > cs) throw bad('backing_file_offset', 8, backingOffset, 'past the first cluster');

  const incompatible = version === 3 ? header.readBigUInt64BE(72) : 0n;
  const compressionType = version === 3 && headerLength > 104 && header.length > 104 ? header[104] : 0;
  if (compressionType > 1) throw bad('compression_type', 104, compressionType, 'qemu-img knows zlib (0) and zstd (1)');
  if ((compressionType !== 0) !== ((incompatible & 8n) !== 0n))
    throw bad(
      'incompatible_features',
      72,
      `0x${incompatible.toString(16)}`,
      `bit 3 must be set exactly when compression_type (${compressionType}) is not zlib`,
    );
  if (incompatible & ~KNOWN_INCOMPATIBLE)
    throw bad(
      'incompatible_features',
      72,
      `0x${incompatible.toString(16)}`,
      `bits 0x${(incompatible & ~KNOWN_INCOMPATIBLE).toString(16)} are features neither bareon nor qemu-img knows`,
    );
  const extendedL2 = (incompatible & 16n) !== 0n;
  if (extendedL2 && clusterBits < 14)
    throw bad('cluster_bits', 20, clusterBits, 'extended L2 entries need clusters of 16 KiB or more');
  const refcountOrder = version === 3 ? header.readUInt32BE(96) : 4;
  if (refcountOrder > 6) throw bad('refcount_order', 96, refcountOrder, 'refcounts are at most 64 bits wide');
  const crypt = header.readUInt32BE(32);
  if (crypt > 2) throw bad('crypt_method', 32, crypt, 'unknown encryption method');
  if (crypt !== 0)
    throw bad(
      'crypt_method',
      32,
      crypt,
      'the image is encrypted; bareon cannot pass its key: decrypt it first (qemu-img convert --object secret,... -O qcow2)',
    );

  const refcountClusters = BigInt(header.readUInt32BE(56));
  if (refcountClusters === 0n) throw bad('refcount_table_clusters', 56, 0, 'the image has no refcount table');
  checkTable(
    ['refcount_table_clusters', 56, refcountClusters],
    ['refcount_table_offset', 48, header.readBigUInt64BE(48)],
    cs,
    MAX_REFTABLE_BYTES,
    cs,
  );
  const snapshots = BigInt(header.readUInt32BE(60));
  checkTable(
    ['nb_snapshots', 60, snapshots],
    ['snapshots_offset', 64, header.readBigUInt64BE(64)],
    SNAPSHOT_HEADER,
    SNAPSHOT_HEADER * MAX_SNAPSHOTS,
    cs,
  );
  const size = header.readBigUInt64BE(24);
  if (size > BigInt(Number.MAX_SAFE_INTEGER))
    throw bad(
      'size',
      24,
      size,
      `the virtual size is larger than bareon can address (${Number.MAX_SAFE_INTEGER} bytes)`,
    );
  const l1Size = BigInt(header.readUInt32BE(36));
  const l1Offset = header.readBigUInt64BE(40);
  checkTable(['l1_size', 36, l1Size], ['l1_table_offset', 40, l1Offset], 8n, MAX_L1_BYTES, cs);
  const l2Covers = cs * (cs / (extendedL2 ? 16n : 8n));
  const l1Used = (size + l2Covers - 1n) / l2Covers;
  if (l1Used > 0x7fff_ffffn) throw bad('size', 24, size, 'the virtual size is larger than qemu-img opens');
  if (l1Size < l1Used)
    throw bad(
      'size',
      24,
      size,
      `its L1 table (field l1_size, byte 36: ${l1Size} entries) covers only ${l1Size * l2Covers} bytes`,
    );
  if (l1Size > 0n && l1Offset < cs)
    throw bad('l1_table_offset', 40, l1Offset, 'the L1 table lies in the header cluster');

  const geometry: Qcow2Geometry = {
    version,
    virtualSize: Number(size),
    clusterSize,
    l1Size: Number(l1Size),
    l1Offset: Number(l1Offset),
    l1Used: Number(l1Used),
  };
  const extensions = checkExtensions(
    header,
    headerLength,
    backingOffset ? Number(backingOffset) : clusterSize,
    version === 3 ? header.readBigUInt64BE(88) : 0n,
    cs,
  );
  const qemuCheck = snapshots ? 'its internal snapshots' : extensions;
  return {
    ...geometry,
    ...(extendedL2 ? { unsupported: 'it has extended L2 entries (subclusters)' } : {}),
    ...(qemuCheck ? { qemuCheck } : {}),
  };
}

/**
 * Walks the header extensions as qemu-img does (qcow2_read_extensions), as far as `header` reaches;
 * returns what of them only qemu-img checks (persistent dirty bitmaps), if anything.
 */
function checkExtensions(
  header: Buffer,
  start: number,
  end: number,
  autoclear: bigint,
  cs: bigint,
): string | undefined {
  let why: string | undefined;
  for (let at = start; at < end; ) {
    if (at + 8 > header.length) return why;
    const magic = header.readUInt32BE(at);
    const len = header.readUInt32BE(at + 4);
    at += 8;
    if (at > end || len > end - at)
      throw new Qcow2FormatError(
        `the header extension 0x${magic.toString(16)} at byte ${at - 8} (${len} bytes) runs past the header's end (byte ${end})`,
      );
    if (magic === 0) return why;
    if (magic === EXT_BACKING_FORMAT && len >= 16)
      throw new Qcow2FormatError(
        `the backing format header extension at byte ${at - 8} is ${len} bytes long, more than qemu-img reads`,
      );
    if (magic === EXT_CRYPTO)
      throw new Qcow2FormatError(
        `the header has an encryption extension (byte ${at - 8}) but the image is not encrypted`,
      );
    if (magic === EXT_BITMAPS) {
      if (len !== 24)
        throw new Qcow2FormatError(`the bitmaps header extension at byte ${at - 8} is ${len} bytes long, not 24`);
      if (autoclear & 1n) {
        if (at + 24 > header.length) return 'its persistent dirty bitmaps';
        const count = header.readUInt32BE(at);
        if (
          header.readUInt32BE(at + 4) !== 0 ||
          count === 0 ||
          count > 65535 ||
          header.readBigUInt64BE(at + 16) % cs ||
          header.readBigUInt64BE(at + 8) > 64n << 20n
        ) {
          throw new Qcow2FormatError(`the bitmaps header extension at byte ${at - 8} is malformed`);
        }
        why = 'its persistent dirty bitmaps';
      }
    }
    at += (len + 7) & ~7;
  }
  return why;
}

/** What an L2 entry maps: nothing (unallocated), zeros, a data cluster at `host`, or a compressed cluster. */
export type L2Entry = { kind: 'unallocated' | 'zero' | 'compressed' } | { kind: 'data'; host: number };

/** Reads entry `j` of an L2 table as qemu-img does: an unaligned cluster, or a zero flag in a version 2 image, is corruption. */
export function l2Entry(l2: Buffer, j: number, g: Qcow2Geometry, guest: number): L2Entry {
  const entry = l2.readBigUInt64BE(j * 8);
  if (entry & COMPRESSED) return { kind: 'compressed' };
  const offset = entry & OFFSET_MASK;
  if (entry & ZERO) {
    if (g.version < 3)
      throw new Qcow2FormatError(
        `the L2 entry for disk byte ${guest} has the zero flag, which a version 2 image cannot have`,
      );
  } else if (offset === 0n) return { kind: 'unallocated' };
  if (offset % BigInt(g.clusterSize))
    throw new Qcow2FormatError(
      `the L2 entry for disk byte ${guest} points at byte ${offset}, unaligned (clusters are ${g.clusterSize} bytes)`,
    );
  if (entry & ZERO) return { kind: 'zero' };
  return { kind: 'data', host: Number(offset) };
}

/**
 * The L2 table offsets of an L1 table, by L1 index, for the entries that map the disk (0 where a
 * table is unallocated). An unaligned one is corruption, as for qemu-img.
 */
export function l2Offsets(l1: Buffer, g: Qcow2Geometry): number[] {
  return Array.from({ length: Math.min(g.l1Used, l1.length / 8) }, (_, i) => {
    const offset = l1.readBigUInt64BE(i * 8) & OFFSET_MASK;
    if (offset % BigInt(g.clusterSize))
      throw new Qcow2FormatError(
        `L1 entry ${i} points its L2 table at byte ${offset}, unaligned (clusters are ${g.clusterSize} bytes)`,
      );
    return Number(offset);
  });
}

/**
 * The data clusters that the L2 table at L1 index `index` maps, in table order, up to the disk's end:
 * unallocated and zero clusters are left out. `compressed` says whether it maps compressed clusters
 * (bareon's reader leaves those to qemu-img; every other entry is checked all the same).
 */
export function l2Clusters(
  l2: Buffer,
  index: number,
  g: Qcow2Geometry,
): { clusters: Qcow2Extent[]; compressed: boolean } {
  const entries = g.clusterSize / 8;
  const clusters: Qcow2Extent[] = [];
  let compressed = false;
  for (let j = 0; j < entries; j++) {
    const guest = (index * entries + j) * g.clusterSize;
    if (guest >= g.virtualSize) break;
    // an all-zero entry is unallocated (no flags, no offset): most of a sparse image, skipped without BigInt
    if (l2.readUInt32BE(j * 8) === 0 && l2.readUInt32BE(j * 8 + 4) === 0) continue;
    const e = l2Entry(l2, j, g, guest);
    if (e.kind === 'compressed') compressed = true;
    if (e.kind === 'data')
      clusters.push({ host: e.host, guest, length: Math.min(g.clusterSize, g.virtualSize - guest) });
  }
  return { clusters, compressed };
}

/** Adds a cluster run to `extents`, merged into the last one where it continues it on disk and in the file. */
export function appendExtent(extents: Qcow2Extent[], e: Qcow2Extent): void {
  const last = extents.at(-1);
  if (last && last.host + last.length === e.host && last.guest + last.length === e.guest) last.length += e.length;
  else extents.push({ ...e });
}

/**
 * How many disk clusters an image may map, counted with repeats: a cluster or table shared by many
 * disk positions is mapped once per position, so a small file could otherwise make millions of
 * them. Four per cluster of the file, and a 2^22 ceiling, is far beyond what images share in practice.
 */
export function mappingBudget(fileSize: number | undefined, clusterSize: number): number {
  const own = fileSize === undefined ? Infinity : 4 * Math.ceil(fileSize / clusterSize) + 65536;
  return Math.min(own, 2 ** 22);
}

/** Fails once `count` mapped clusters pass the budget. */
export function checkMappingBudget(count: number, budget: number): void {
  if (count > budget)
    throw new Qcow2FormatError(
      `its tables map more than ${budget} clusters of the disk, more than its file holds many times over (clusters shared by many disk positions); bareon refuses it`,
    );
}

/** Checks that a table or cluster at `offset` lies after the header cluster and within the file. */
function inFile(what: string, offset: number, length: number, g: Qcow2Geometry, fileSize: number): void {
  if (offset < g.clusterSize) throw new Qcow2FormatError(`the ${what} lies in the header cluster (byte ${offset})`);
  if (offset + length > fileSize)
    throw new Qcow2FormatError(
      `the ${what} lies past the end of the file (at byte ${offset}; the file has ${fileSize}): the qcow2 is truncated`,
    );
}

/**
 * Reads the header and the active L1 and L2 tables of a local qcow2 (version 2 or 3), checking them
 * as qemu-img would (see qcow2Geometry, l2Offsets, l2Entry), and more strictly in one way: every
 * table and data cluster the disk uses must lie within the file, where qemu-img reads zeros past its end.
 */
export async function readQcow2Map(fh: FileHandle): Promise<Qcow2Map> {
  const fileSize = (await fh.stat()).size;
  const head = await readAt(fh, Math.min(fileSize, 112), 0, 'header', fileSize);
  const clusterBits = head.length >= 24 ? head.readUInt32BE(20) : 0;
  const firstCluster =
    clusterBits >= 9 && clusterBits <= 21
      ? await readAt(fh, Math.min(fileSize, 2 ** clusterBits), 0, 'header', fileSize)
      : head;
  const g = qcow2Geometry(firstCluster);
  const map: Qcow2Map = {
    virtualSize: g.virtualSize,
    clusterSize: g.clusterSize,
    extents: [],
    ...(g.qemuCheck ? { qemuCheck: g.qemuCheck } : {}),
  };
  if (g.unsupported) return { ...map, unsupported: g.unsupported };
  if (g.l1Size) inFile('L1 table', g.l1Offset, g.l1Size * 8, g, fileSize);
  const l1 = await readAt(fh, g.l1Size * 8, g.l1Offset, 'L1 table', fileSize);

  const extents: Qcow2Extent[] = [];
  const budget = mappingBudget(fileSize, g.clusterSize);
  let mapped = 0;
  let unsupported: string | undefined;
  for (const [i, l2Offset] of l2Offsets(l1, g).entries()) {
    if (l2Offset === 0) continue;
    inFile(`L2 table ${i}`, l2Offset, g.clusterSize, g, fileSize);
    const { clusters, compressed } = l2Clusters(
      await readAt(fh, g.clusterSize, l2Offset, `L2 table ${i}`, fileSize),
      i,
      g,
    );
    if (compressed) unsupported = 'it has compressed clusters';
    mapped += clusters.length;
    checkMappingBudget(mapped, budget);
    for (const c of clusters) {
      inFile(`cluster for disk byte ${c.guest}`, c.host, c.length, g, fileSize);
      appendExtent(extents, c);
    }
  }
  if (unsupported) return { ...map, unsupported };
  extents.sort((a, b) => a.host - b.host);
  return { ...map, extents };
}
