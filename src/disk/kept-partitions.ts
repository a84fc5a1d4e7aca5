import { ValidationError } from '../core/errors.js';
import { readPartitionTable } from '../deploy/partition-table.js';
import type { DiskTarget } from '../objects/index.js';
import type { Disk } from '../objects/layout.js';
import { formatBytes } from '../objects/size.js';
import { placePartitions } from './geometry.js';

/** What blkid sees at an offset of a disk or image file: TYPE, UUID, LABEL… (no partition node needed). */
async function probe(target: DiskTarget, offset: number): Promise<Record<string, string>> {
  const r = await target.executor.run(['blkid', '-p', '-O', String(offset), '-o', 'export', target.path], { allowFailure: true });
  return Object.fromEntries(r.stdout.split('\n').flatMap((l) => (l.includes('=') ? [[l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]] : [])));
}

/**
 * Kept partitions (`keep: true`): each must be on the disk already, where the new table puts it
 * (same number, start and size), holding the filesystem the layout names; otherwise the run stops
 * before anything is written. Their partition and filesystem UUIDs are adopted, so the new table
 * and fstab name them as they are. Returns a line per kept partition.
 */
export async function adoptKeptPartitions(disk: Disk, target: DiskTarget, file: string): Promise<string[]> {
  const kept = disk.partitions.flatMap((p, index) => (p.keep ? [index] : []));
  if (!kept.length) return [];
  const where = (i: number) => `${file}: disks.${disk.id}.partitions[${i}]`;
  if (target.kind === 'image') throw new ValidationError(`${where(kept[0])}: keep: applies when deploying onto a disk that holds the partition`);
  const table = await readPartitionTable(target.executor, target.path);
  if (!table) throw new ValidationError(`${where(kept[0])}: keep: ${target.path} has no partition table, so there is nothing to keep`, { hint: 'deploy without keep: first' });
  const planned = placePartitions(disk, target.size);
  const lines: string[] = [];
  for (const index of kept) {
    const spec = disk.partitions[index];
    const place = planned.partitions.find((p) => p.index === index)!;
    const found = table.partitions.find((p) => p.number === place.number);
    const at = (start: number, size: number) => `offset ${start}, size ${formatBytes(size)} (${size})`;
    if (!found || found.start !== place.start || found.size !== place.size) {
      throw new ValidationError(`${where(index)}: keep: the new table puts partition ${place.number} at ${at(place.start, place.size)}, but ${target.path} has ${found ? `it at ${at(found.start, found.size)}` : 'no such partition'}; nothing was written`, {
        hint: 'a kept partition must stay where it is: give the partitions before it the sizes they had',
      });
    }
    const fs = await probe(target, place.start);
    if (spec.fs && fs.TYPE !== spec.fs.type && !(spec.fs.type.startsWith('ext') && fs.TYPE?.startsWith('ext'))) {
      throw new ValidationError(`${where(index)}: keep: partition ${place.number} of ${target.path} holds ${fs.TYPE ?? 'no filesystem'}, the layout says ${spec.fs.type}; nothing was written`);
    }
    if (found.uuid) spec.uuid = found.uuid;
    if (spec.fs && fs.UUID) spec.fs.uuid = fs.UUID;
    lines.push(`partition ${place.number}${spec.mount ? ` (${spec.mount})` : ''}: kept, ${fs.TYPE ?? 'no filesystem'}${fs.UUID ? ` ${fs.UUID}` : ''}`);
  }
  return lines;
}

/** Marks the partitions named by `--keep-label` (GPT name or filesystem label) as kept. */
export function keepLabels(disks: Disk[], labels: string[], file: string): void {
  for (const label of labels) {
    const matches = disks.flatMap((d) => d.partitions.filter((p) => p.name === label || p.fs?.label === label));
    if (!matches.length) throw new ValidationError(`--keep-label ${label}: no partition of ${file} has that name or filesystem label`);
    for (const p of matches) p.keep = true;
  }
}

/** Bytes zeroed at each end of an old partition: md (1.2 at 4 KiB, 0.9/1.0 at the end), LVM labels, filesystem superblocks. */
export const WIPE_BYTES = 2 ** 20;

/**
 * Commands that remove old signatures before a new table is written: the head and tail of every
 * partition of the old table that is not kept (what wipefs would find there: filesystems, LVM
 * labels, md superblocks), so a disk that held LVM or RAID deploys cleanly. The table itself is
 * replaced by the partitioning tools.
 */
export async function wipeOldPartitions(disk: Disk, target: DiskTarget): Promise<{ cmds: string[][]; wiped: number[] }> {
  if (target.kind === 'image') return { cmds: [], wiped: [] };
  const table = await readPartitionTable(target.executor, target.path);
  if (!table) return { cmds: [], wiped: [] };
  const planned = placePartitions(disk, target.size);
  const kept = planned.partitions.filter((p) => p.spec.keep);
  const overlapsKept = (start: number, end: number) => kept.some((k) => start < k.start + k.size && end > k.start);
  const cmds: string[][] = [];
  const wiped: number[] = [];
  const zero = (offset: number, bytes: number) => ['dd', 'if=/dev/zero', `of=${target.path}`, 'bs=64K', `seek=${offset}`, `count=${bytes}`, 'oflag=seek_bytes', 'iflag=count_bytes', 'conv=notrunc,fsync', 'status=none'];
  for (const p of table.partitions) {
    if (overlapsKept(p.start, p.start + p.size)) continue;
    const n = Math.min(WIPE_BYTES, p.size);
    cmds.push(zero(p.start, n));
    if (p.size > n) cmds.push(zero(p.start + p.size - Math.min(WIPE_BYTES, p.size - n), Math.min(WIPE_BYTES, p.size - n)));
    wiped.push(p.number);
  }
  return { cmds, wiped };
}
