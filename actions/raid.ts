import { onLayout } from './placement.js';
import { ValidationError, definePlugin } from 'bareon/plugin';
import {
  mdadmCreateArgs,
  requireLayout,
  HostExecutor,
  partitionById,
  volumeDevice,
  requireStorageSupport,
} from 'bareon/disk';

/** Makes the layout's md arrays (mdadm) from its partitions of type raid; they are stopped when the run ends. */
export default definePlugin({
  reads: ['layout', 'disks'],
  summary: 'makes the md RAID arrays of the layout (levels 0, 1, 5, 10) from partitions of type raid',
  pipelines: { deploy: { after: ['partitioning'], applies: (o) => onLayout(o) && !!o.layout?.raids.length } },
  async validate(objects) {
    const layout = requireLayout(objects, 'raid');
    if (!layout.raids.length) return;
    if (objects.disks?.some((d) => d.kind === 'image'))
      throw new ValidationError(
        `${objects.layoutFile ?? 'layout'}: raids: md arrays are made when deploying onto disks, not in images`,
      );
    await requireStorageSupport('md', objects.layoutFile ?? 'layout');
  },
  describe(objects) {
    return objects.layout!.raids.map(
      (r) =>
        `mdadm --create /dev/md/${r.id}: RAID ${r.level} over ${r.devices.join(', ')} (metadata ${r.metadata})${r.fs ? `, ${r.fs.type}${r.mount ? ` on ${r.mount}` : ''}` : ''}`,
    );
  },
  async run(ctx) {
    const layout = requireLayout(ctx.objects, 'raid');
    const ex = new HostExecutor(ctx.signal);
    for (const raid of layout.raids) {
      const devices: string[] = [];
      for (const id of raid.devices) devices.push(await volumeDevice(ctx.objects, partitionById(ctx.objects, id)!));
      // a new member may still carry an old array's or filesystem's signature at its new offset;
      // udev may still be probing the partitions the new table made
      await ex.run(['udevadm', 'settle'], { allowFailure: true });
      for (const dev of devices)
        await ex.run(['wipefs', '--all', '--quiet', dev], { step: `raid ${raid.id}: wipe ${dev}` });
      ctx.log(`mdadm --create /dev/md/${raid.id} (RAID ${raid.level}) over ${devices.join(' ')}`);
      await ex.run(mdadmCreateArgs(raid, devices), { step: `raid ${raid.id}: mdadm --create`, onLine: ctx.log });
      ctx.cleanup.defer(
        () => new HostExecutor().run(['mdadm', '--stop', `/dev/md/${raid.id}`], { allowFailure: true }),
        `stop /dev/md/${raid.id}`,
      );
      await ex.run(['udevadm', 'settle'], { allowFailure: true });
    }
    ctx.setTitle(
      `raid: ${layout.raids.map((r) => `${r.id} (RAID ${r.level}, ${r.devices.length} devices)`).join(', ')}`,
    );
  },
});
