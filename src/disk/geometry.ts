import type { ArtifactPartition } from '../objects/artifact.js';
import { ValidationError } from '../core/errors.js';
import type { DiskGeometry, PlacedPartition } from '../objects/geometry.js';
import type { Disk, Partition } from '../objects/layout.js';

export type { DiskGeometry, PlacedPartition } from '../objects/geometry.js';
import { alignDown, alignUp, formatBytes, MiB } from '../core/size.js';

export const SECTOR = 512;
/** Partitions start and end on 1 MiB boundaries. */
export const ALIGNMENT = MiB;
/** GPT keeps 33 sectors (header + entries) at the end of the disk. */
const GPT_BACKUP_BYTES = 33 * SECTOR;

/** Bytes a partition asks for, or undefined for `remaining`. */
function requested(p: Partition, diskSize: number): number | undefined {
  if (p.size.kind === 'remaining') return undefined;
  const raw = p.size.kind === 'percent' ? (diskSize * p.size.percent) / 100 : p.size.bytes;
  return Math.max(ALIGNMENT, alignUp(raw, ALIGNMENT));
}

/** Room for `contentBytes` of files in a filesystem image: 30 % headroom, whole MiB. */
export function withHeadroom(contentBytes: number): number {
  return alignUp(Math.ceil(contentBytes * 1.3), ALIGNMENT);
}

/** The disk size `auto` gives: `content` bytes for the remaining partition plus 30 % headroom, plus the rest. */
export function autoDiskSize(disk: Disk, contentBytes: number): number {
  const fixed = disk.partitions.reduce(
    (n, p) => n + (p.size.kind === 'bytes' ? alignUp(p.size.bytes, ALIGNMENT) : 0),
    0,
  );
  const percent = disk.partitions.reduce((n, p) => n + (p.size.kind === 'percent' ? p.size.percent : 0), 0);
  const hasRemaining = disk.partitions.some((p) => p.size.kind === 'remaining');
  const content = hasRemaining ? withHeadroom(contentBytes) : 0;
  const logicals = disk.table === 'msdos' && disk.partitions.length > 4 ? disk.partitions.length * ALIGNMENT : 0;
  const overhead = 2 * ALIGNMENT + logicals;
  return alignUp(Math.ceil((fixed + content + overhead) / (1 - percent / 100)), ALIGNMENT);
}

/**
 * Places a disk's partitions: 1 MiB aligned, in order, `remaining` taking what is left. msdos tables
 * use primaries 1-3 and an extended partition 4 with logicals from 5 when there are more than four.
 * Throws a ValidationError naming the partition that does not fit.
 */
export function placePartitions(disk: Disk, diskSize: number, where = `disk "${disk.id}"`): DiskGeometry {
  const parts = disk.partitions;
  const end = disk.table === 'gpt' ? alignDown(diskSize - GPT_BACKUP_BYTES, ALIGNMENT) : alignDown(diskSize, ALIGNMENT);
  const logical = disk.table === 'msdos' && parts.length > 4;
  // Each logical partition needs room for its EBR: one alignment unit in front of it.
  const gapBefore = (i: number) => (logical && i >= 3 ? ALIGNMENT : 0);
  const fixedTotal = parts.reduce((n, p, i) => n + (requested(p, diskSize) ?? 0) + gapBefore(i), 0);
  const remainingIndex = parts.findIndex((p) => p.size.kind === 'remaining');
  const available = end - ALIGNMENT;
  if (fixedTotal > available || (remainingIndex >= 0 && available - fixedTotal < ALIGNMENT)) {
    const need = fixedTotal + (remainingIndex >= 0 ? ALIGNMENT : 0);
    throw new ValidationError(
      `${where}: the partitions need ${formatBytes(need + ALIGNMENT)} but the disk has ${formatBytes(diskSize)}`,
      { hint: 'make partitions smaller, the disk larger, or use size: auto for images' },
    );
  }
  const placed: PlacedPartition[] = [];
  let cursor = ALIGNMENT;
  let extended: DiskGeometry['extended'];
  parts.forEach((spec, index) => {
    if (logical && index === 3) extended = { number: 4, start: cursor, size: 0 };
    cursor += gapBefore(index);
    const size = requested(spec, diskSize) ?? available - fixedTotal;
    const number = logical && index >= 3 ? index + 2 : index + 1;
    placed.push({ number, index, start: cursor, size, spec });
    cursor += size;
  });
  if (extended) extended.size = cursor - extended.start;
  return { table: disk.table, size: diskSize, partitions: placed, extended };
}

/** The partitions of a placed disk as a manifest records them: where they lie, their UUIDs and filesystems. */
export function artifactPartitions(geometry: DiskGeometry): ArtifactPartition[] {
  return geometry.partitions.map((p) => ({
    number: p.number,
    type: p.spec.type,
    offset: p.start,
    size: p.size,
    uuid: p.spec.uuid,
    fs: p.spec.fs ? { type: p.spec.fs.type, uuid: p.spec.fs.uuid, label: p.spec.fs.label } : undefined,
    mount: p.spec.mount,
  }));
}
