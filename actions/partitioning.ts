import { onLayout } from './placement.js';
import {
  ValidationError,
  definePlugin,
  shq,
  type Partition,
  fixedBytes,
  formatBytes,
  formatSizeSpec,
} from 'bareon/plugin';
import {
  GPT_ROOT_X86_64,
  GPT_TYPE,
  MSDOS_TYPE,
  placePartitions,
  SECTOR,
  type DiskGeometry,
  assignIdentifiers,
  makeUuid,
  checkFits,
  adoptKeptPartitions,
  wipeOldPartitions,
  disksWithTargets,
  requireLayout,
  layOutReservations,
} from 'bareon/disk';

const sectors = (bytes: number) => bytes / SECTOR;

/** sgdisk arguments that write a fresh GPT for `geometry`. */
export function sgdiskArgs(geometry: DiskGeometry, diskGuid: string, path: string): string[] {
  const args = ['sgdisk', '--zap-all', '--set-alignment=2048', `--disk-guid=${diskGuid}`];
  for (const p of geometry.partitions) {
    const n = p.number;
    const code = p.spec.type === 'linux' && p.spec.mount === '/' ? GPT_ROOT_X86_64 : GPT_TYPE[p.spec.type];
    args.push(
      `--new=${n}:${sectors(p.start)}:${sectors(p.start + p.size) - 1}`,
      `--typecode=${n}:${code}`,
      `--change-name=${n}:${p.spec.name ?? p.spec.fs?.label ?? p.spec.type}`,
    );
    if (p.spec.uuid) args.push(`--partition-guid=${n}:${p.spec.uuid}`);
    if (p.spec.flags.includes('legacy_boot')) args.push(`--attributes=${n}:set:2`);
  }
  args.push(path);
  return args;
}

/** An sfdisk script for an msdos table: primaries, then an extended partition with logicals. */
export function sfdiskScript(geometry: DiskGeometry, diskId: string): string {
  const lines = ['label: dos', `label-id: 0x${diskId.replace(/-/g, '').slice(0, 8)}`, 'unit: sectors', ''];
  const line = (start: number, size: number, type: string, bootable: boolean) =>
    `start=${sectors(start)}, size=${sectors(size)}, type=${type}${bootable ? ', bootable' : ''}`;
  for (const p of geometry.partitions) {
    if (geometry.extended && p.number === 5)
      lines.push(line(geometry.extended.start, geometry.extended.size, '5', false));
    lines.push(line(p.start, p.size, MSDOS_TYPE[p.spec.type]!, p.spec.flags.includes('boot') || p.spec.mount === '/'));
  }
  return `${lines.join('\n')}\n`;
}

/** Lays out each disk of the layout: GPT through sgdisk, msdos through sfdisk, 1 MiB aligned. */
export default definePlugin({
  reads: ['layout', 'disks', 'reservations'],
  writes: ['layout', 'disks'],
  summary: 'writes the partition tables of the layout (sgdisk for GPT, sfdisk for msdos)',
  pipelines: { deploy: { applies: onLayout }, image: {} },
  plan(objects) {
    if (objects.layout) assignIdentifiers(objects.layout);
  },
  async validate(objects) {
    layOutReservations(objects);
    const layout = requireLayout(objects, 'partitioning');
    const file = objects.layoutFile ?? objects.profileFile ?? 'layout';
    // a deploy target's real size, else the image's fixed size
    checkFits(
      layout,
      (d) => objects.disks?.find((t) => t.id === layout.disks[d].id)?.size ?? fixedBytes(layout.disks[d].size),
      file,
    );
    // kept partitions are checked against the disk, and their UUIDs adopted, before anything is written
    if (objects.disks)
      for (const { disk, target } of disksWithTargets(objects, 'partitioning'))
        await adoptKeptPartitions(disk, target, file);
    else if (layout.disks.some((d) => d.partitions.some((p) => p.keep)))
      throw new ValidationError(
        `${file}: keep: applies when deploying onto a disk that holds the partition, not to images`,
      );
  },
  describe(objects) {
    const fsText = (p: Partition) =>
      `${p.fs ? `  ${p.fs.type}${p.fs.label ? ` "${p.fs.label}"` : ''}` : ''}${p.mount ? ` on ${p.mount}` : ''}`;
    // a disk image is sized from the root filesystem, which a dry run does not build: no offsets yet
    if (!objects.disks) {
      return requireLayout(objects, 'partitioning').disks.flatMap((disk) => [
        `${disk.id}: new ${disk.table} table on an image of ${disk.size === 'auto' ? 'the root filesystem’s size plus headroom' : formatBytes(fixedBytes(disk.size) ?? 0)}`,
        ...disk.partitions.map(
          (p, i) => `  ${i + 1}. ${p.type.padEnd(9)} size ${formatSizeSpec(p.size).padStart(10)}${fsText(p)}`,
        ),
      ]);
    }
    return disksWithTargets(objects, 'partitioning').flatMap(({ disk, target }) => [
      `${target.path}: new ${disk.table} table on ${formatBytes(target.size)}`,
      ...placePartitions(disk, target.size).partitions.map(
        (p) =>
          `  ${p.number}. ${p.spec.keep ? 'kept ' : ''}${p.spec.type.padEnd(9)} offset ${String(p.start).padStart(12)}  size ${formatBytes(p.size).padStart(10)}${fsText(p.spec)}`,
      ),
    ]);
  },
  async run(ctx) {
    for (const { disk, target } of disksWithTargets(ctx.objects, 'partitioning')) {
      await target.prepare();
      const old = await wipeOldPartitions(disk, target);
      for (const cmd of old.cmds)
        await target.executor.run(cmd, { step: `partitioning ${disk.id}: remove old signatures` });
      if (old.wiped.length)
        ctx.log(`removed old signatures from partition(s) ${old.wiped.join(', ')} of the previous table`);
      const geometry = placePartitions(disk, target.size);
      const diskGuid = makeUuid(ctx.objects.layout!.seed, `${disk.id}/disk`);
      if (disk.table === 'gpt') {
        await target.executor.run(sgdiskArgs(geometry, diskGuid, target.path), {
          step: `partitioning ${disk.id}`,
          onLine: ctx.log,
        });
      } else {
        const script = `${await target.scratchDir()}/bareon-table.sfdisk`;
        await target.executor.writeFile(script, Buffer.from(sfdiskScript(geometry, diskGuid)));
        await target.executor.run(
          ['sh', '-c', `sfdisk --no-reread --no-tell-kernel --wipe always ${shq(target.path)} < ${shq(script)}`],
          {
            step: `partitioning ${disk.id}`,
            onLine: ctx.log,
          },
        );
      }
      target.geometry = geometry;
      ctx.setTitle(`partitioning ${disk.id}: ${disk.table}, ${geometry.partitions.length} partitions`);
    }
  },
});
