import type { Objects } from '../objects/index.js';

/**
 * Adds the partitions actions reserved during plan (`objects.reservations`) to the end of the
 * layout's first disk, each once: partitioning calls this before it checks that the layout fits.
 */
export function layOutReservations(objects: Objects): void {
  const disk = objects.layout?.disks[0];
  if (!disk) return;
  for (const r of objects.reservations ?? []) {
    const placed = disk.partitions.some(
      (p) => p === r.partition || (p.type === r.partition.type && p.name === r.partition.name),
    );
    if (!placed) disk.partitions.push(r.partition);
  }
}

/** Bytes the reservations need at the end of a disk: what --grow leaves free after a whole-disk image. */
export function reservedBytes(objects: Objects): number {
  return (objects.reservations ?? []).reduce(
    (sum, r) => sum + (r.partition.size.kind === 'bytes' ? r.partition.size.bytes : 0),
    0,
  );
}
