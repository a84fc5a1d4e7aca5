import { SECTOR } from '../disk/geometry.js';
import type { PartitionTable } from '../disk/partition-table.js';

/**
 * The partition table in the first bytes of a disk image (MBR, or GPT behind a protective MBR), read
 * from a source's head before anything is written. Undefined when the head holds no table.
 */
export function tableFromHead(head: Buffer): PartitionTable | undefined {
  if (head.length < 2 * SECTOR || head.readUInt16LE(510) !== 0xaa55) return undefined;
  const mbr = [0, 1, 2, 3].map((i) => {
    const e = 446 + 16 * i;
    return {
      number: i + 1,
      type: head[e + 4],
      start: head.readUInt32LE(e + 8) * SECTOR,
      size: head.readUInt32LE(e + 12) * SECTOR,
    };
  });
  if (mbr.some((p) => p.type === 0xee)) {
    if (head.subarray(SECTOR, SECTOR + 8).toString('latin1') !== 'EFI PART') return undefined;
    const entriesAt = Number(head.readBigUInt64LE(SECTOR + 72)) * SECTOR;
    const count = head.readUInt32LE(SECTOR + 80);
    const entrySize = head.readUInt32LE(SECTOR + 84);
    const partitions: PartitionTable['partitions'] = [];
    for (let i = 0; i < count && entriesAt + (i + 1) * entrySize <= head.length; i++) {
      const e = entriesAt + i * entrySize;
      if (head.subarray(e, e + 16).every((b) => b === 0)) continue;
      const first = Number(head.readBigUInt64LE(e + 32));
      const last = Number(head.readBigUInt64LE(e + 40));
      const name = head
        .subarray(e + 56, e + 128)
        .toString('utf16le')
        .replace(/\0.*$/s, '');
      partitions.push({ number: i + 1, start: first * SECTOR, size: (last - first + 1) * SECTOR, type: '', name });
    }
    return { label: 'gpt', partitions };
  }
  return {
    label: 'dos',
    partitions: mbr
      .filter((p) => p.type !== 0)
      .map((p) => ({ number: p.number, start: p.start, size: p.size, type: p.type.toString(16) })),
  };
}
