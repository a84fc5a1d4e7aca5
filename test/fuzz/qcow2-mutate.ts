import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { prng } from './prng.js';

/** The PRNG of case `index` of a run with `seed`: any case replays from those two numbers alone. */
export function caseRandom(seed: number, index: number): () => number {
  return prng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

/** An honest image to mutate, and where its tables and data clusters are. */
export interface BaseImage {
  name: string;
  bytes: Buffer;
  clusterSize: number;
  l1Offset: number;
  /** File offsets of the used L1 entries, the L2 tables, the used L2 entries and the data clusters. */
  l1Entries: number[];
  l2Tables: number[];
  l2Entries: number[];
  clusters: number[];
}

const MASK = 0x00ff_ffff_ffff_fe00n;

/** Makes the honest images once per run (qemu-img create, then qemu-io writes in a scattered order). */
export async function makeBaseImages(dir: string): Promise<BaseImage[]> {
  const specs: [string, string, string, string[]][] = [
    ['v3-64k', '4M', '', ['write -P 0x11 3M 64k', 'write -P 0x12 0 1088k', 'write -P 0x13 2M 128k', 'write -z 1M 64k']],
    [
      'v3-512',
      '3M',
      'cluster_size=512',
      ['write -P 0x21 1900k 1100k', 'write -P 0x22 0 4k', 'write -P 0x23 1M 1536', 'write -z 2100k 2k'],
    ],
    [
      'v2-4k',
      '6M',
      'compat=0.10,cluster_size=4096',
      ['write -P 0x31 4M 1100k', 'write -P 0x32 0 8k', 'write -P 0x33 2M 4k'],
    ],
  ];
  const out: BaseImage[] = [];
  for (const [name, size, opts, io] of specs) {
    const file = path.join(dir, `${name}.base.qcow2`);
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...(opts ? ['-o', opts] : []), file, size]);
    await execa('qemu-io', [...io.flatMap((c) => ['-c', c]), file]);
    out.push(describeImage(name, await readFile(file)));
  }
  return out;
}

/** Finds the tables and clusters of an honest qcow2 (its L1 and L2 tables, read as the spec says). */
function describeImage(name: string, bytes: Buffer): BaseImage {
  const clusterSize = 2 ** bytes.readUInt32BE(20);
  const l1Offset = Number(bytes.readBigUInt64BE(40));
  const l1Size = bytes.readUInt32BE(36);
  const img: BaseImage = {
    name,
    bytes,
    clusterSize,
    l1Offset,
    l1Entries: [],
    l2Tables: [],
    l2Entries: [],
    clusters: [],
  };
  for (let i = 0; i < l1Size; i++) {
    const l2 = Number(bytes.readBigUInt64BE(l1Offset + i * 8) & MASK);
    if (!l2) continue;
    img.l1Entries.push(l1Offset + i * 8);
    img.l2Tables.push(l2);
    for (let j = 0; j < clusterSize / 8; j++) {
      const host = Number(bytes.readBigUInt64BE(l2 + j * 8) & MASK);
      if (!host) continue;
      img.l2Entries.push(l2 + j * 8);
      img.clusters.push(host);
    }
  }
  return img;
}

/** One mutation: what it did, in words a failure report can be read from. */
type Mutation = (img: BaseImage, bytes: Buffer, r: () => number) => { bytes: Buffer; did: string };

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const setU64 = (b: Buffer, at: number, v: bigint) => b.writeBigUInt64BE(BigInt.asUintN(64, v), at);

/** Header fields: [name, byte offset, width]. */
const FIELDS: [string, number, 4 | 8][] = [
  ['version', 4, 4],
  ['backing_file_offset', 8, 8],
  ['cluster_bits', 20, 4],
  ['size', 24, 8],
  ['crypt_method', 32, 4],
  ['l1_size', 36, 4],
  ['l1_table_offset', 40, 8],
  ['refcount_table_offset', 48, 8],
  ['refcount_table_clusters', 56, 4],
  ['nb_snapshots', 60, 4],
  ['snapshots_offset', 64, 8],
  ['incompatible_features', 72, 8],
  ['autoclear_features', 88, 8],
  ['refcount_order', 96, 4],
  ['header_length', 100, 4],
];

/** Values worth trying in a field: edges, neighbours of the honest value, other tables' offsets, huge ones. */
function interesting(img: BaseImage, honest: bigint, r: () => number): bigint {
  const cs = BigInt(img.clusterSize);
  return pick(r, [
    0n,
    1n,
    8n,
    512n,
    cs,
    honest + 1n,
    honest - 1n,
    honest * 2n,
    honest + cs,
    honest + 512n,
    honest ^ (1n << BigInt(Math.floor(r() * 64))),
    BigInt(pick(r, img.l2Tables)),
    BigInt(pick(r, img.clusters)),
    BigInt(img.l1Offset),
    1n << 62n,
    1n << 40n,
    BigInt(img.bytes.length),
    BigInt(Math.floor(r() * 2 ** 32)),
  ]);
}

const mutations: Record<string, Mutation> = {
  header(img, b, r) {
    const [name, at, width] = pick(r, FIELDS);
    const honest = width === 8 ? b.readBigUInt64BE(at) : BigInt(b.readUInt32BE(at));
    const v = interesting(img, honest, r);
    if (width === 8) setU64(b, at, v);
    else b.writeUInt32BE(Number(BigInt.asUintN(32, v)), at);
    return {
      bytes: b,
      did: `header ${name} ${honest} → ${width === 8 ? BigInt.asUintN(64, v) : BigInt.asUintN(32, v)}`,
    };
  },
  l1(img, b, r) {
    const at = pick(r, [...img.l1Entries, img.l1Offset + 8 * Math.floor(r() * 4)]);
    if (at + 8 > b.length) return { bytes: b, did: `L1 entry at ${at} (cut off)` };
    const v = tableEntry(img, b, at, r);
    return { bytes: b, did: `L1 entry at ${at} → 0x${v.toString(16)}` };
  },
  l2(img, b, r) {
    const at = pick(r, img.l2Entries);
    if (at + 8 > b.length) return { bytes: b, did: `L2 entry at ${at} (cut off)` };
    const v = tableEntry(img, b, at, r);
    return { bytes: b, did: `L2 entry at ${at} → 0x${v.toString(16)}` };
  },
  truncate(img, b, r) {
    const to = Math.max(112, Math.floor(b.length * (0.5 + r() / 2)) - Math.floor(r() * img.clusterSize));
    return { bytes: b.subarray(0, to), did: `truncated to ${to} of ${b.length} bytes` };
  },
  headerByte(img, b, r) {
    const at = Math.floor(r() * Math.min(img.clusterSize, 512, b.length));
    const bit = Math.floor(r() * 8);
    b[at] ^= 1 << bit;
    return { bytes: b, did: `header byte ${at} bit ${bit} flipped` };
  },
};

/** A new value for the L1 or L2 entry at `at`: another table or cluster (shared), the header, unaligned, past the end, flags, a flipped bit. */
function tableEntry(img: BaseImage, b: Buffer, at: number, r: () => number): bigint {
  const old = b.readBigUInt64BE(at);
  const copied = 1n << 63n;
  const v = pick(r, [
    copied | BigInt(pick(r, img.clusters)),
    copied | BigInt(pick(r, img.l2Tables)),
    copied | BigInt(img.l1Offset),
    b.readBigUInt64BE(Math.min(b.length - 8, pick(r, [...img.l2Entries, ...img.l1Entries]))),
    copied | 0x200n,
    0n,
    old + 512n,
    copied | BigInt(b.length + img.clusterSize * 4),
    old | (1n << 62n),
    old | 1n,
    old ^ (1n << BigInt(Math.floor(r() * 64))),
    1n,
  ]);
  setU64(b, at, v);
  return BigInt.asUintN(64, v);
}

/** Case `index` of run `seed`: one to three mutations of one base image, written to `file`. */
export async function mutateCase(bases: BaseImage[], seed: number, index: number, file: string): Promise<string> {
  const r = caseRandom(seed, index);
  const img = pick(r, bases);
  let bytes = Buffer.from(img.bytes);
  const did: string[] = [];
  const count = 1 + Math.floor(r() * 3);
  for (let i = 0; i < count; i++) {
    const m = pick(r, ['header', 'l1', 'l2', 'l2', 'l2', 'truncate', 'headerByte'] as const);
    const res = mutations[m](img, bytes, r);
    bytes = res.bytes;
    did.push(res.did);
  }
  await writeFile(file, bytes);
  return `${img.name}: ${did.join('; ')}`;
}
