import { readPartitionTable } from './partition-table.js';
import type { DiskTarget } from '../objects/index.js';
import type { Disk } from '../objects/layout.js';
import { placePartitions } from './geometry.js';

/** Bytes zeroed at each end of an old partition: md (1.2 at 4 KiB, 0.9/1.0 at the end), LVM labels, filesystem superblocks. */
export const WIPE_BYTES = 2 ** 20;

/**
 * Commands that remove old signatures before a new table is written: the head and tail of every
 * partition of the old table that is not kept (what wipefs would find there: filesystems, LVM
 * labels, md superblocks), so a disk that held LVM or RAID deploys cleanly. The table itself is
 * replaced by the partitioning tools.
 */
export async function wipeOldPartitions(
  disk: Disk,
  target: DiskTarget,
): Promise<{ cmds: string[][]; wiped: number[] }> {
  if (target.kind === 'image') return { cmds: [], wiped: [] };
  const table = await readPartitionTable(target.executor, target.path);
  if (!table) return { cmds: [], wiped: [] };
  const planned = placePartitions(disk, target.size);
  const kept = planned.partitions.filter((p) => p.spec.keep);
  const overlapsKept = (start: number, end: number) => kept.some((k) => start < k.start + k.size && end > k.start);
  const cmds: string[][] = [];
  const wiped: number[] = [];
  const zero = (offset: number, bytes: number) => [
    'dd',
    'if=/dev/zero',
    `of=${target.path}`,
    'bs=64K',
    `seek=${offset}`,
    `count=${bytes}`,
    'oflag=seek_bytes',
    'iflag=count_bytes',
    'conv=notrunc,fsync',
    'status=none',
  ];
  for (const p of table.partitions) {
    if (overlapsKept(p.start, p.start + p.size)) continue;
    const n = Math.min(WIPE_BYTES, p.size);
    cmds.push(zero(p.start, n));
    if (p.size > n)
      cmds.push(zero(p.start + p.size - Math.min(WIPE_BYTES, p.size - n), Math.min(WIPE_BYTES, p.size - n)));
    wiped.push(p.number);
  }
  return { cmds, wiped };
}
