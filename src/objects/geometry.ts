import type { Partition } from './layout.js';

/** Where one partition lies on the disk. */
export interface PlacedPartition {
  /** The kernel's partition number (msdos logicals start at 5). */
  number: number;
  /** Index in the layout's partitions list. */
  index: number;
  start: number;
  size: number;
  spec: Partition;
}

export interface DiskGeometry {
  table: 'gpt' | 'msdos';
  size: number;
  partitions: PlacedPartition[];
  /** msdos only: the extended partition holding the logicals. */
  extended?: { number: 4; start: number; size: number };
}
