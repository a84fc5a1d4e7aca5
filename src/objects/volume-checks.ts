import type { z } from 'zod';
import type { Layout } from './layout.js';
import { layoutVolumes } from './volumes.js';

type Ctx = z.core.$RefinementCtx<Layout>;

/**
 * Cross-references of a layout: unique labels, mount points and ids; partitions of type raid and
 * lvm used by exactly one array or volume group; arrays with enough devices and a use (a filesystem
 * or a volume group); one `remaining` volume per group.
 */
export function checkLayoutVolumes(layout: Layout, ctx: Ctx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const volumes = layoutVolumes(layout);
  const labels = new Map<string, string>();
  const mounts = new Map<string, string>();
  for (const v of volumes) {
    if (v.fs?.label) {
      const seen = labels.get(v.fs.label);
      if (seen) issue([...v.path, 'fs', 'label'], `duplicate label "${v.fs.label}", also used by ${seen}`);
      else labels.set(v.fs.label, v.name);
    }
    if (v.mount) {
      const seen = mounts.get(v.mount);
      if (seen) issue([...v.path, 'mount'], `duplicate mount point "${v.mount}", also used by ${seen}`);
      else mounts.set(v.mount, v.name);
      if (!v.fs || v.fs.type === 'swap')
        issue([...v.path, 'mount'], 'a mount point needs a filesystem (fs.type) that is not swap');
    }
  }

  // ids: partitions, arrays and volume groups share one namespace
  const ids = new Map<string, { path: (string | number)[]; kind: 'partition' | 'raid' | 'vg'; type?: string }>();
  const claim = (id: string, path: (string | number)[], kind: 'partition' | 'raid' | 'vg', type?: string) => {
    if (ids.has(id)) issue([...path, 'id'], `duplicate id "${id}"`);
    else ids.set(id, { path, kind, type });
  };
  layout.disks.forEach((disk, d) =>
    disk.partitions.forEach((p, i) => p.id && claim(p.id, ['disks', d, 'partitions', i], 'partition', p.type)),
  );
  layout.raids.forEach((r, i) => claim(r.id, ['raids', i], 'raid'));
  layout.volume_groups.forEach((g, i) => claim(g.id, ['volume_groups', i], 'vg'));

  const usedBy = new Map<string, string>();
  const use = (
    ref: string,
    by: string,
    path: (string | number)[],
    allowed: { partitionType?: string; raid?: boolean },
  ) => {
    const target = ids.get(ref);
    const want = [allowed.partitionType && `a partition of type ${allowed.partitionType}`, allowed.raid && 'a raid']
      .filter(Boolean)
      .join(' or ');
    if (!target) return issue(path, `"${ref}" is not an id in this layout; expected ${want}`);
    const ok =
      (target.kind === 'partition' && target.type === allowed.partitionType) ||
      (target.kind === 'raid' && allowed.raid);
    if (!ok)
      return issue(
        path,
        `"${ref}" is ${target.kind === 'partition' ? `a partition of type ${target.type}` : `a ${target.kind}`}; expected ${want}`,
      );
    const seen = usedBy.get(ref);
    if (seen) return issue(path, `"${ref}" is already used by ${seen}`);
    usedBy.set(ref, by);
  };
  layout.raids.forEach((r, i) => {
    r.devices.forEach((dev, j) => use(dev, `raid ${r.id}`, ['raids', i, 'devices', j], { partitionType: 'raid' }));
    if (r.level === 5 && r.devices.length < 3)
      issue(['raids', i, 'devices'], `RAID 5 needs at least three devices, ${r.id} has ${r.devices.length}`);
  });
  layout.volume_groups.forEach((g, i) => {
    g.devices.forEach((dev, j) =>
      use(dev, `volume group ${g.id}`, ['volume_groups', i, 'devices', j], { partitionType: 'lvm', raid: true }),
    );
    const remaining = g.volumes.flatMap((v, j) => (v.size.kind === 'remaining' ? [j] : []));
    if (remaining.length > 1)
      issue(
        ['volume_groups', i, 'volumes', remaining[1], 'size'],
        `only one volume per group may use "remaining" (volumes ${remaining.join(' and ')} both do)`,
      );
    const names = new Set<string>();
    g.volumes.forEach((v, j) => {
      if (names.has(v.name))
        issue(['volume_groups', i, 'volumes', j, 'name'], `duplicate volume name "${v.name}" in ${g.id}`);
      names.add(v.name);
    });
  });

  layout.disks.forEach((disk, d) =>
    disk.partitions.forEach((p, i) => {
      if (p.type !== 'raid' && p.type !== 'lvm') return;
      const here = ['disks', d, 'partitions', i];
      if (p.fs || p.mount)
        issue(
          [...here, p.fs ? 'fs' : 'mount'],
          `a partition of type ${p.type} holds an ${p.type === 'raid' ? 'md array member' : 'LVM physical volume'}; put the filesystem on the ${p.type === 'raid' ? 'raid' : 'logical volume'}`,
        );
      if (!p.id)
        issue(
          [...here, 'type'],
          `a partition of type ${p.type} needs an id that ${p.type === 'raid' ? 'raids[].devices' : 'volume_groups[].devices'} names`,
        );
      else if (!usedBy.has(p.id))
        issue(
          [...here, 'id'],
          `partition "${p.id}" (type ${p.type}) is in no ${p.type === 'raid' ? 'raid' : 'volume group'}`,
        );
    }),
  );
  layout.raids.forEach((r, i) => {
    const inVg = usedBy.get(r.id);
    if (inVg && (r.fs || r.mount))
      issue(
        ['raids', i, r.fs ? 'fs' : 'mount'],
        `raid ${r.id} is a physical volume of ${inVg}; the filesystems go on its logical volumes`,
      );
    if (!inVg && !r.fs) issue(['raids', i], `raid ${r.id} has no filesystem (fs:) and is in no volume group`);
  });
}
