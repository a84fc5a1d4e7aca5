import type { DiskExecutor } from '../core/disk-executor.js';
import { SECTOR } from './geometry.js';

/** One partition of a table as sfdisk reads it. */
export interface TablePartition {
  number: number;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
}

export interface PartitionTable {
  label: 'gpt' | 'dos';
  partitions: TablePartition[];
}

/** The partition table on a disk or image file (sfdisk --json), or undefined when it has none. */
export async function readPartitionTable(ex: DiskExecutor, disk: string): Promise<PartitionTable | undefined> {
  const r = await ex.run(['sfdisk', '--json', disk], { allowFailure: true });
  if (r.exitCode !== 0 || !r.stdout.trim()) return undefined;
  const t = JSON.parse(r.stdout).partitiontable as {
    label: 'gpt' | 'dos';
    sectorsize?: number;
    partitions?: { node: string; start: number; size: number; type: string; uuid?: string; name?: string }[];
  };
  const unit = t.sectorsize ?? SECTOR;
  return {
    label: t.label,
    partitions: (t.partitions ?? []).map((p) => ({
      number: Number(/(\d+)$/.exec(p.node)?.[1]),
      start: p.start * unit,
      size: p.size * unit,
      type: p.type,
      uuid: p.uuid?.toLowerCase(),
      name: p.name,
    })),
  };
}
