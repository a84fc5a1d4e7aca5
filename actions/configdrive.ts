import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ValidationError,
  definePlugin,
  CONFIG_DRIVE_BYTES,
  CONFIG_DRIVE_LABEL,
  type ConfigDriveRequest,
  type DiskExecutor,
  type DiskTarget,
  type Objects,
  formatBytes,
} from 'bareon/plugin';
import {
  configDriveFiles,
  writeDriveFilesystem,
  createDrivePartition,
  driveSlot,
  findDrivePartition,
  type DrivePartition,
  readPartitionTable,
  type PartitionTable,
  placePartitions,
  tableFromHead,
} from 'bareon/disk';
import { readQcow2Head } from 'bareon/stream';

const request = (objects: Objects) => objects.configDrive;

function requireRequest(objects: Objects): ConfigDriveRequest {
  const req = request(objects);
  if (!req) {
    throw new ValidationError('configdrive: nothing to write', {
      hint: 'give --meta-data FILE (and --user-data, --network-config) or --config-drive DIR, or a configdrive: section in the profile or layout',
    });
  }
  return req;
}

/** The layout lays the disk out in this run: the drive is a partition of it, reserved during plan. */
const laidOut = (objects: Objects) => Boolean(objects.layout) && objects.source?.content !== 'disk';

/**
 * The table the target will carry before configdrive runs: from the whole-disk image (its head, or
 * for a local qcow2 its first sectors through qemu-img), or the disk as it is now. Undefined when
 * that cannot be known before writing (a remote qcow2); run then decides.
 */
async function tableBefore(objects: Objects, target: DiskTarget): Promise<PartitionTable | undefined | 'unknown'> {
  const source = objects.source;
  if (source?.content !== 'disk') return readPartitionTable(target.executor, target.path);
  if (source.format !== 'qcow2') return tableFromHead(source.head);
  if (!source.file) return 'unknown';
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-head-'));
  try {
    return tableFromHead(
      await readQcow2Head(
        target.executor,
        source.file,
        64 * 1024,
        path.join(dir, 'head.raw'),
        'read the partition table of the qcow2',
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The tools that make each drive filesystem, and their Debian packages. */
const DRIVE_TOOLS: Record<string, [string, string][]> = {
  iso9660: [['xorriso', 'xorriso']],
  vfat: [
    ['mkfs.vfat', 'dosfstools'],
    ['mcopy', 'mtools'],
  ],
};

/** Stops before anything is written when a tool the drive's filesystem needs is missing where the disk tools run. */
async function requireDriveTools(executor: DiskExecutor, fs: string): Promise<void> {
  for (const [tool, pkg] of DRIVE_TOOLS[fs] ?? []) {
    const r = await executor.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
    if (r.exitCode !== 0)
      throw new ValidationError(`configdrive: the ${fs} config drive needs ${tool}, which is not installed here`, {
        hint: `apt-get install ${pkg}; nothing was written`,
      });
  }
}

/**
 * Writes a cloud-init config drive: NoCloud (`cidata`) or OpenStack `config-2`, as vfat (mtools, no
 * mount) or iso9660 (xorriso), in a 64 MiB partition at the end of the disk. With a layout it
 * reserves that partition during plan, so partitioning creates it; on a disk that already holds a
 * table (a whole-disk image, or a deployed disk) it reuses a partition with the drive's label or
 * appends one in the free space at the end.
 */
export default definePlugin({
  summary:
    'writes a cloud-init config drive (NoCloud cidata or config-2; vfat or iso9660) into a 64 MiB partition at the end of the disk',
  pipelines: { deploy: { after: ['deploy', 'bootloader'], applies: (o) => !!o.configDrive } },
  reads: ['configDrive', 'source', 'layout', 'disks', 'deploy'],
  writes: ['reservations'],
  // asks partitioning (through objects.reservations) for its partition at the end of the disk; after
  // a whole-disk image, --grow leaves that room
  async plan(objects) {
    const req = request(objects);
    if (!req) return;
    if (objects.layout?.disks[0].partitions.some((p) => p.type === 'configdrive')) return;
    // the schemas (zod) load when a config drive is asked for, not with every deploy that reads this action's place
    const { PartitionSchema } = await import('bareon');
    objects.reservations ??= [];
    objects.reservations.push({
      by: 'configdrive',
      partition: PartitionSchema.parse({
        type: 'configdrive',
        size: `${CONFIG_DRIVE_BYTES / 2 ** 20}MiB`,
        name: CONFIG_DRIVE_LABEL[req.flavor],
      }),
    });
  },
  async validate(objects) {
    const req = requireRequest(objects);
    await configDriveFiles(req);
    const target = objects.disks?.[0];
    if (!target) throw new ValidationError('configdrive: no target disk', { hint: 'give --target DISK' });
    await requireDriveTools(target.executor, req.fs);
    if (laidOut(objects)) return; // partitioning checks that the reserved partition fits
    const table = await tableBefore(objects, target);
    if (table === 'unknown') return;
    if (!table)
      throw new ValidationError(`configdrive: ${target.path} has no partition table to add a config drive to`, {
        hint: 'deploy an image first, or give a layout',
      });
    const label = CONFIG_DRIVE_LABEL[req.flavor];
    if (table.partitions.some((p) => p.name?.toLowerCase() === label)) return;
    if (objects.source?.content !== 'disk' && (await findDrivePartition(target.executor, target.path, table, label)))
      return;
    const growing = objects.source?.content === 'disk' && objects.deploy?.grow;
    if (growing && table.label === 'gpt') return; // --grow leaves the room
    driveSlot(table, target.size, target.path);
  },
  describe(objects) {
    const req = request(objects);
    if (!req) return [];
    const where = laidOut(objects)
      ? `the layout's last partition (${formatBytes(CONFIG_DRIVE_BYTES)})`
      : `a partition labelled ${CONFIG_DRIVE_LABEL[req.flavor]}, or a new ${formatBytes(CONFIG_DRIVE_BYTES)} one at the end of the disk`;
    return [
      `config drive ${req.flavor} (${req.fs}) from ${req.origin === 'flags' ? 'the flags' : req.origin} into ${where}: ${Object.values(req.files).filter(Boolean).join(', ')}`,
    ];
  },
  async run(ctx) {
    const req = requireRequest(ctx.objects);
    const target = ctx.objects.disks![0];
    await target.prepare();
    const label = CONFIG_DRIVE_LABEL[req.flavor];
    const files = await configDriveFiles(req);
    const placed = laidOut(ctx.objects)
      ? (target.geometry ?? placePartitions(ctx.objects.layout!.disks[0], target.size)).partitions.find(
          (p) => p.spec.type === 'configdrive',
        )
      : undefined;
    let part: DrivePartition;
    if (placed) part = { number: placed.number, offset: placed.start, size: placed.size, created: true };
    else {
      const table = await readPartitionTable(target.executor, target.path);
      if (!table) throw new ValidationError(`configdrive: ${target.path} has no partition table`);
      part =
        (await findDrivePartition(target.executor, target.path, table, label)) ??
        (await createDrivePartition(
          target.executor,
          target.path,
          table,
          driveSlot(table, target.size, target.path),
          label,
        ));
    }
    await writeDriveFilesystem(target.executor, target.path, part, req.fs, label, files, await target.scratchDir());
    ctx.setTitle(
      `config drive ${req.flavor} (${req.fs}) in partition ${part.number}${part.created ? '' : ' (reused)'}: ${files.map((f) => f.path).join(', ')}`,
    );
  },
});
