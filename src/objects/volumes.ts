import type { Filesystem, Layout, LogicalVolume, Partition, Raid, VolumeGroup } from './layout.js';

/**
 * A place that can hold a filesystem: a disk partition, an md array, or an LVM logical volume.
 * fstab, mounting, the bootloader and the checks see all three the same way.
 */
export type Volume =
  | {
      kind: 'partition';
      disk: number;
      index: number;
      partition: Partition;
      fs?: Filesystem;
      mount?: string;
      keep: boolean;
      path: (string | number)[];
      name: string;
    }
  | { kind: 'raid'; raid: Raid; fs?: Filesystem; mount?: string; keep: false; path: (string | number)[]; name: string }
  | {
      kind: 'lv';
      vg: VolumeGroup;
      lv: LogicalVolume;
      fs?: Filesystem;
      mount?: string;
      keep: false;
      path: (string | number)[];
      name: string;
    };

/** Every partition, array and logical volume of the layout, in layout order. */
export function layoutVolumes(
  layout: Pick<Layout, 'disks'> & Partial<Pick<Layout, 'raids' | 'volume_groups'>>,
): Volume[] {
  return [
    ...layout.disks.flatMap((disk, d) =>
      disk.partitions.map(
        (partition, index): Volume => ({
          kind: 'partition',
          disk: d,
          index,
          partition,
          fs: partition.fs,
          mount: partition.mount,
          keep: partition.keep,
          path: ['disks', d, 'partitions', index],
          name: `disks[${d}].partitions[${index}]`,
        }),
      ),
    ),
    ...(layout.raids ?? []).map(
      (raid, r): Volume => ({
        kind: 'raid',
        raid,
        fs: raid.fs,
        mount: raid.mount,
        keep: false,
        path: ['raids', r],
        name: `raids[${r}] (${raid.id})`,
      }),
    ),
    ...(layout.volume_groups ?? []).flatMap((vg, g) =>
      vg.volumes.map(
        (lv, v): Volume => ({
          kind: 'lv',
          vg,
          lv,
          fs: lv.fs,
          mount: lv.mount,
          keep: false,
          path: ['volume_groups', g, 'volumes', v],
          name: `volume_groups[${g}].volumes[${v}] (${vg.id}/${lv.name})`,
        }),
      ),
    ),
  ];
}

/** The device node of an array or logical volume once it exists: /dev/md/ID, /dev/mapper/VG-LV. */
export function volumeDevicePath(v: Volume): string | undefined {
  if (v.kind === 'raid') return `/dev/md/${v.raid.id}`;
  if (v.kind === 'lv') return `/dev/mapper/${v.vg.id.replace(/-/g, '--')}-${v.lv.name.replace(/-/g, '--')}`;
  return undefined;
}

/** The md arrays and volume groups a volume sits on, innermost first (an LV on a VG on md0 gives [vg0, md0]). */
export function volumeStack(layout: Layout, v: Volume): { raids: Raid[]; vgs: VolumeGroup[] } {
  const raids = new Map(layout.raids.map((r) => [r.id, r]));
  if (v.kind === 'raid') return { raids: [v.raid], vgs: [] };
  if (v.kind === 'lv')
    return { raids: v.vg.devices.flatMap((d) => (raids.has(d) ? [raids.get(d)!] : [])), vgs: [v.vg] };
  return { raids: [], vgs: [] };
}

/** Disk indexes whose partitions a volume is built from (its own disk for a partition). */
export function volumeDisks(layout: Layout, v: Volume): number[] {
  const byId = new Map(
    layout.disks.flatMap((disk, d) => disk.partitions.flatMap((p) => (p.id ? [[p.id, d] as const] : []))),
  );
  const raids = new Map(layout.raids.map((r) => [r.id, r]));
  const expand = (ids: string[]): number[] =>
    ids.flatMap((id) => (raids.has(id) ? expand(raids.get(id)!.devices) : byId.has(id) ? [byId.get(id)!] : []));
  const disks = v.kind === 'partition' ? [v.disk] : v.kind === 'raid' ? expand(v.raid.devices) : expand(v.vg.devices);
  return [...new Set(disks)].sort((a, b) => a - b);
}
