import type { Compression } from '../objects/deploy.js';

/** The compression a stream starts with, from its magic bytes. */
export function detectCompression(head: Buffer): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zst';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return undefined;
}

export type ContentMagic = 'qcow2' | 'tar' | 'ext4' | 'disk' | 'manifest' | 'unknown';

/** What uncompressed bytes are: a qcow2, a tar, an ext2/3/4 filesystem, a partitioned disk, a bareon manifest. */
export function detectContent(head: Buffer): ContentMagic {
  if (head.length >= 4 && head.subarray(0, 4).equals(Buffer.from('QFI\xfb', 'latin1'))) return 'qcow2';
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  if (head.length >= 1082 && head.readUInt16LE(1080) === 0xef53) return 'ext4';
  if (head.length >= 520 && head.subarray(512, 520).toString('latin1') === 'EFI PART') return 'disk';
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) return 'disk';
  const text = head.subarray(0, 4096).toString('utf8').trimStart();
  if (text.startsWith('{') && text.includes('"manifest_version"')) return 'manifest';
  return 'unknown';
}

/** The fields of a qcow2 header that decide whether bareon reads it. */
export interface Qcow2Header {
  version: number;
  virtualSize: number;
  backingFile: boolean;
  externalDataFile: boolean;
  dirty: boolean;
  corrupt: boolean;
}

export function parseQcow2Header(head: Buffer): Qcow2Header {
  const version = head.readUInt32BE(4);
  const incompatible = version >= 3 && head.length >= 80 ? head.readBigUInt64BE(72) : 0n;
  return {
    version,
    virtualSize: Number(head.readBigUInt64BE(24)),
    backingFile: head.readBigUInt64BE(8) !== 0n,
    dirty: (incompatible & 1n) !== 0n,
    corrupt: (incompatible & 2n) !== 0n,
    externalDataFile: (incompatible & 4n) !== 0n,
  };
}

/** The UUID of an ext2/3/4 superblock at the start of `head`. */
export function ext4Uuid(head: Buffer): string {
  const h = head.subarray(1024 + 0x68, 1024 + 0x78).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The size of an ext2/3/4 filesystem from its superblock. */
export function ext4Size(head: Buffer): number {
  const sb = 1024;
  const is64bit = (head.readUInt32LE(sb + 0x60) & 0x80) !== 0;
  const blocks = head.readUInt32LE(sb + 4) + (is64bit ? head.readUInt32LE(sb + 0x150) * 2 ** 32 : 0);
  return blocks * 1024 * 2 ** head.readUInt32LE(sb + 24);
}
