import { BareonError, ValidationError } from '../core/errors.js';
import type { Disk, Layout } from '../objects/layout.js';
import type { DiskTarget, Objects } from '../objects/index.js';
import { volumeDisks } from '../objects/volumes.js';
import { rootVolume } from './layout-checks.js';

export function requireLayout(objects: Objects, who: string): Layout {
  if (!objects.layout) throw new ValidationError(`${who}: needs a layout (--layout FILE, or layout: in the profile)`);
  return objects.layout;
}

/** Each layout disk with the target it is being written to. */
export function disksWithTargets(objects: Objects, who: string): { disk: Disk; target: DiskTarget }[] {
  const layout = requireLayout(objects, who);
  if (!objects.disks) {
    throw new BareonError(`${who}: no disk to work on`, {
      hint: 'disk actions run in an image build (the raw and qcow2 exporters), a deploy (bareon-deploy, bareon-build --target), or bareon run --target DISK',
    });
  }
  return layout.disks.map((disk) => {
    const target = objects.disks?.find((t) => t.id === disk.id);
    if (!target) throw new BareonError(`${who}: layout disk "${disk.id}" has no target (objects.disks)`);
    return { disk, target };
  });
}

/**
 * The target whose root tree holds `/`: the disk of a root partition; for a root on md or LVM, the
 * first disk it is built from (a host deploy mounts one tree for all disks).
 */
export function rootTarget(objects: Objects, who: string): DiskTarget {
  const layout = requireLayout(objects, who);
  const all = disksWithTargets(objects, who);
  const root = rootVolume(layout, objects.layoutFile ?? objects.profileFile);
  const disk = layout.disks[volumeDisks(layout, root)[0] ?? 0];
  return all.find((d) => d.disk === disk)!.target;
}
