import { ValidationError } from '../core/errors.js';
import type { DiskExecutor } from '../core/disk-executor.js';
import { SECTOR } from '../disk/geometry.js';
import { readPartitionTable, type PartitionTable } from '../disk/partition-table.js';
import { CONFIG_DRIVE_BYTES } from '../objects/configdrive.js';
import { formatBytes, MiB } from '../core/size.js';
import { probeAt } from '../disk/probe.js';

/** A config drive partition on a disk that already carries a table. */
export interface DrivePartition {
  number: number;
  offset: number;
  size: number;
  /** false when an existing partition with the drive's label is reused. */
  created: boolean;
}

/** Microsoft basic data: what a vfat or iso9660 data partition is typed as on GPT. */
const GPT_BASIC_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';
/** A GPT keeps its backup entries and header in the last 33 sectors. */
const GPT_TAIL = 33 * SECTOR;

/** An existing partition named or labelled `label` (case-insensitive, as cloud-init matches). */
export async function findDrivePartition(
  ex: DiskExecutor,
  disk: string,
  table: PartitionTable,
  label: string,
): Promise<DrivePartition | undefined> {
  for (const p of table.partitions) {
    if (p.name?.toLowerCase() === label || (await probeAt(ex, disk, p.start)).LABEL?.toLowerCase() === label)
      return { number: p.number, offset: p.start, size: p.size, created: false };
  }
  return undefined;
}

/** Where a new config drive partition goes: 1 MiB aligned, ending before the disk's end (and the backup GPT). */
export function driveSlot(table: PartitionTable, diskSize: number, disk: string): { start: number; size: number } {
  if (table.label === 'dos') {
    const primaries = table.partitions.filter((p) => p.number <= 4);
    if (primaries.length >= 4) {
      throw new ValidationError(
        `${disk}: the msdos table has no free primary partition for a config drive (all four are used)`,
        {
          hint: 'free one, convert the image to GPT, or give the config drive to the image at build time',
        },
      );
    }
  }
  const end = diskSize - (table.label === 'gpt' ? GPT_TAIL : 0);
  const start = Math.floor((end - CONFIG_DRIVE_BYTES) / MiB) * MiB;
  const used = Math.max(MiB, ...table.partitions.map((p) => p.start + p.size));
  if (start < used) {
    throw new ValidationError(
      `${disk}: no room for a ${formatBytes(CONFIG_DRIVE_BYTES)} config drive after the last partition (it ends ${formatBytes(diskSize - used)} before the end of the disk)`,
      {
        hint: 'deploy onto a larger disk or --size; with --grow, bareon-deploy leaves the room when a config drive is asked for',
      },
    );
  }
  return { start, size: CONFIG_DRIVE_BYTES };
}

/** Appends the config drive partition with sfdisk, which also moves a GPT's backup header to the disk's real end. */
export async function createDrivePartition(
  ex: DiskExecutor,
  disk: string,
  table: PartitionTable,
  slot: { start: number; size: number },
  label: string,
): Promise<DrivePartition> {
  const line = `start=${slot.start / SECTOR}, size=${slot.size / SECTOR}, ${table.label === 'gpt' ? `type=${GPT_BASIC_DATA}, name=${label}` : 'type=c'}\n`;
  await ex.run(['sfdisk', '--append', '--no-reread', '--no-tell-kernel', disk], {
    step: `add the config drive partition to ${disk}`,
    input: line,
  });
  const after = await readPartitionTable(ex, disk);
  const made = after?.partitions.find((p) => p.start === slot.start);
  if (!made) throw new ValidationError(`${disk}: sfdisk did not create the config drive partition at ${slot.start}`);
  return { number: made.number, offset: made.start, size: made.size, created: true };
}
