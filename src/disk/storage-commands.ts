import type { LogicalVolume, Raid, VolumeGroup } from '../objects/layout.js';

/** mdadm --create for an array over `devices` (their device nodes, in the layout's order). */
export function mdadmCreateArgs(raid: Raid, devices: string[]): string[] {
  return [
    'mdadm',
    '--create',
    `/dev/md/${raid.id}`,
    '--run',
    '--force',
    `--level=${raid.level}`,
    `--raid-devices=${devices.length}`,
    `--metadata=${raid.metadata}`,
    `--name=${raid.id}`,
    '--homehost=any',
    ...(raid.level === 1 || raid.level === 10 ? ['--bitmap=internal'] : []),
    ...devices,
  ];
}

/** The group's volumes in creation order: fixed sizes and percentages first, `remaining` last. */
export function creationOrder(vg: VolumeGroup): LogicalVolume[] {
  return [...vg.volumes].sort((a, b) => Number(a.size.kind === 'remaining') - Number(b.size.kind === 'remaining'));
}

/** lvcreate for one volume: bytes (-L …b), a share of the group (-l N%VG), or what is left (-l 100%FREE). */
export function lvcreateArgs(vg: VolumeGroup, lv: LogicalVolume): string[] {
  const size =
    lv.size.kind === 'bytes'
      ? ['-L', `${lv.size.bytes}b`]
      : lv.size.kind === 'percent'
        ? ['-l', `${lv.size.percent}%VG`]
        : ['-l', '100%FREE'];
  return ['lvcreate', '--yes', '--wipesignatures', 'y', '--zero', 'y', '--name', lv.name, ...size, vg.id];
}

/** Usable bytes of an array over members of these sizes (before md's own metadata). */
export function raidCapacity(level: Raid['level'], members: number[]): number {
  const n = members.length;
  const smallest = Math.min(...members);
  switch (level) {
    case 0:
      return members.reduce((a, b) => a + b, 0);
    case 1:
      return smallest;
    case 5:
      return (n - 1) * smallest;
    case 10:
      return Math.floor((n * smallest) / 2);
  }
}

/**
 * Room md and LVM take for themselves on a device of `bytes`, as an upper bound: md 1.x keeps its
 * data offset (up to 128 MiB on large members) plus a bitmap; LVM its label, metadata area and the
 * rounding to 4 MiB extents.
 */
export function stackOverhead(bytes: number): number {
  const MiB = 2 ** 20;
  return Math.min(128 * MiB, Math.max(2 * MiB, Math.ceil(bytes / 1024))) + 8 * MiB;
}
