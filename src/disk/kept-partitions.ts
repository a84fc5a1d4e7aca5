import { ValidationError } from '../core/errors.js';
import { readPartitionTable } from './partition-table.js';
import type { DiskTarget } from '../objects/index.js';
import type { Disk } from '../objects/layout.js';
import { formatBytes } from '../core/size.js';
import { placePartitions } from './geometry.js';
import { probeAt } from './probe.js';

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
  if (target.kind === 'image')
    throw new ValidationError(`${where(kept[0])}: keep: applies when deploying onto a disk that holds the partition`);
  const table = await readPartitionTable(target.executor, target.path);
  if (!table)
    throw new ValidationError(
      `${where(kept[0])}: keep: ${target.path} has no partition table, so there is nothing to keep`,
      { hint: 'deploy without keep: first' },
    );
  const planned = placePartitions(disk, target.size);
  const lines: string[] = [];
  for (const index of kept) {
    const spec = disk.partitions[index];
    const place = planned.partitions.find((p) => p.index === index)!;
    const found = table.partitions.find((p) => p.number === place.number);
    const at = (start: number, size: number) => `offset ${start}, size ${formatBytes(size)} (${size})`;
    if (!found || found.start !== place.start || found.size !== place.size) {
      throw new ValidationError(
        `${where(index)}: keep: the new table puts partition ${place.number} at ${at(place.start, place.size)}, but ${target.path} has ${found ? `it at ${at(found.start, found.size)}` : 'no such partition'}; nothing was written`,
        {
          hint: 'a kept partition must stay where it is: give the partitions before it the sizes they had',
        },
      );
    }
    const fs = await probeAt(target.executor, target.path, place.start);
    if (spec.fs && fs.TYPE !== spec.fs.type && !(spec.fs.type.startsWith('ext') && fs.TYPE?.startsWith('ext'))) {
      throw new ValidationError(
        `${where(index)}: keep: partition ${place.number} of ${target.path} holds ${fs.TYPE ?? 'no filesystem'}, the layout says ${spec.fs.type}; nothing was written`,
      );
    }
    if (found.uuid) spec.uuid = found.uuid;
    if (spec.fs && fs.UUID) spec.fs.uuid = fs.UUID;
    lines.push(
      `partition ${place.number}${spec.mount ? ` (${spec.mount})` : ''}: kept, ${fs.TYPE ?? 'no filesystem'}${fs.UUID ? ` ${fs.UUID}` : ''}`,
    );
  }
  return lines;
}

/** Marks the partitions named by `--keep-label` (GPT name or filesystem label) as kept. */
export function keepLabels(disks: Disk[], labels: string[], file: string): void {
  for (const label of labels) {
    const matches = disks.flatMap((d) => d.partitions.filter((p) => p.name === label || p.fs?.label === label));
    if (!matches.length)
      throw new ValidationError(`--keep-label ${label}: no partition of ${file} has that name or filesystem label`);
    for (const p of matches) p.keep = true;
  }
}
