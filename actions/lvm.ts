import { onLayout } from './placement.js';
import { ValidationError, definePlugin, type Objects, locateIn, formatBytes, layoutVolumes } from 'bareon/plugin';
import {
  creationOrder,
  lvcreateArgs,
  raidCapacity,
  stackOverhead,
  placePartitions,
  requireLayout,
  HostExecutor,
  partitionById,
  volumeDevice,
  requireStorageSupport,
} from 'bareon/disk';

/** Refuses volume groups whose fixed-size volumes cannot fit on their devices, before anything is written. */
export function checkVolumeGroupsFit(objects: Objects): void {
  const layout = objects.layout!;
  const partSize = new Map<string, number>();
  layout.disks.forEach((disk) => {
    const target = objects.disks?.find((t) => t.id === disk.id);
    if (target)
      for (const p of placePartitions(disk, target.size).partitions) if (p.spec.id) partSize.set(p.spec.id, p.size);
  });
  const deviceSize = (id: string): number | undefined => {
    const raid = layout.raids.find((r) => r.id === id);
    if (!raid) return partSize.get(id);
    const members = raid.devices.map((d) => partSize.get(d));
    return members.every((m) => m !== undefined) ? raidCapacity(raid.level, members as number[]) : undefined;
  };
  layout.volume_groups.forEach((vg, g) => {
    const sizes = vg.devices.map(deviceSize);
    if (sizes.some((s) => s === undefined)) return;
    const capacity = (sizes as number[]).reduce((n, s) => n + s - stackOverhead(s), 0);
    const fixed = vg.volumes.reduce(
      (n, v) =>
        n +
        (v.size.kind === 'bytes' ? v.size.bytes : v.size.kind === 'percent' ? (capacity * v.size.percent) / 100 : 0),
      0,
    );
    if (fixed > capacity) {
      throw new ValidationError(
        `${locateIn(layout, ['volume_groups', g, 'volumes'], objects.layoutFile ?? 'layout')}: the volumes of ${vg.id} need ${Math.ceil(fixed / 2 ** 20)} MiB, and its devices give about ${Math.floor(capacity / 2 ** 20)} MiB`,
        {
          hint: 'make the volumes smaller, or the partitions under the group larger; nothing was written',
        },
      );
    }
  });
}

/** Makes the layout's LVM volume groups (on partitions of type lvm or md arrays) and their logical volumes. */
export default definePlugin({
  reads: ['layout', 'disks'],
  summary: 'makes the LVM volume groups and logical volumes of the layout, on partitions of type lvm or on md arrays',
  pipelines: {
    deploy: { after: ['partitioning', 'raid'], applies: (o) => onLayout(o) && !!o.layout?.volume_groups.length },
  },
  async validate(objects) {
    const layout = requireLayout(objects, 'lvm');
    if (!layout.volume_groups.length) return;
    if (objects.disks?.some((d) => d.kind === 'image'))
      throw new ValidationError(
        `${objects.layoutFile ?? 'layout'}: volume_groups: LVM is made when deploying onto disks, not in images`,
      );
    checkVolumeGroupsFit(objects);
    await requireStorageSupport('lvm', objects.layoutFile ?? 'layout');
  },
  describe(objects) {
    return objects.layout!.volume_groups.flatMap((g) => [
      `vgcreate ${g.id} on ${g.devices.join(', ')}`,
      ...creationOrder(g).map(
        (lv) =>
          `  lvcreate ${g.id}/${lv.name}: ${lv.size.kind === 'bytes' ? formatBytes(lv.size.bytes) : lv.size.kind === 'percent' ? `${lv.size.percent}% of the group` : 'the rest'}${lv.fs ? `, ${lv.fs.type}${lv.mount ? ` on ${lv.mount}` : ''}` : ''}`,
      ),
    ]);
  },
  async run(ctx) {
    const layout = requireLayout(ctx.objects, 'lvm');
    const ex = new HostExecutor(ctx.signal);
    for (const vg of layout.volume_groups) {
      const devices: string[] = [];
      for (const id of vg.devices) {
        const raid = layoutVolumes(layout).find((v) => v.kind === 'raid' && v.raid.id === id);
        devices.push(await volumeDevice(ctx.objects, raid ?? partitionById(ctx.objects, id)!));
      }
      for (const dev of devices)
        await ex.run(['wipefs', '--all', '--quiet', dev], { step: `lvm ${vg.id}: wipe ${dev}` });
      await ex.run(['pvcreate', '--yes', '--force', '--force', ...devices], {
        step: `lvm ${vg.id}: pvcreate`,
        onLine: ctx.log,
      });
      await ex.run(['vgcreate', '--yes', vg.id, ...devices], { step: `lvm ${vg.id}: vgcreate`, onLine: ctx.log });
      ctx.cleanup.defer(
        () => new HostExecutor().run(['vgchange', '--activate', 'n', vg.id], { allowFailure: true }),
        `deactivate volume group ${vg.id}`,
      );
      for (const lv of creationOrder(vg))
        await ex.run(lvcreateArgs(vg, lv), { step: `lvm ${vg.id}: lvcreate ${lv.name}`, onLine: ctx.log });
      await ex.run(['udevadm', 'settle'], { allowFailure: true });
    }
    ctx.setTitle(
      `lvm: ${layout.volume_groups.map((g) => `${g.id} (${g.volumes.map((v) => v.name).join(', ')})`).join('; ')}`,
    );
  },
});
