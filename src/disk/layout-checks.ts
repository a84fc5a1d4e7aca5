import { ValidationError } from '../core/errors.js';
import type { Layout, Partition } from '../objects/layout.js';
import { formatPath, locateIn } from '../objects/yaml-source.js';
import { placePartitions } from './geometry.js';

export interface FoundPartition {
  disk: number;
  index: number;
  partition: Partition;
  /** "disks[0].partitions[3]" */
  path: string;
}

export function findPartitions(layout: Layout, match: (p: Partition) => boolean): FoundPartition[] {
  return layout.disks.flatMap((disk, d) =>
    disk.partitions.flatMap((partition, index) => (match(partition) ? [{ disk: d, index, partition, path: formatPath(['disks', d, 'partitions', index]) }] : [])),
  );
}

/** The partition mounted at `/`, or a ValidationError saying it is missing. */
export function rootPartition(layout: Layout, file = 'layout'): FoundPartition {
  const [root] = findPartitions(layout, (p) => p.mount === '/');
  if (!root) throw new ValidationError(`${locateIn(layout, ['disks'], file)}: no partition is mounted at "/"`, { hint: 'add mount: / to the partition that holds the root filesystem' });
  return root;
}

/** Sizes that cannot fit on disks of a known size (a fixed image size, or a real disk's size). */
export function checkFits(layout: Layout, diskSizes: (diskIndex: number) => number | undefined, file = 'layout'): void {
  layout.disks.forEach((disk, d) => {
    const size = diskSizes(d);
    if (size !== undefined) placePartitions(disk, size, `${locateIn(layout, ['disks', d], file)} (${disk.id})`);
  });
}

/** What the bootloader kinds need from the layout: an ESP for grub-efi, a bios_grub partition for grub-bios on GPT. */
export function checkBootloader(layout: Layout, file = 'layout'): void {
  const kinds = layout.bootloader?.kind ?? [];
  if (kinds.length === 0) return;
  const root = rootPartition(layout, file);
  const disk = layout.disks[root.disk];
  if (kinds.includes('grub-efi') && !findPartitions(layout, (p) => p.type === 'esp').length) {
    throw new ValidationError(`${locateIn(layout, ['bootloader', 'kind'], file)}: grub-efi needs a partition of type esp`, { hint: 'add {type: esp, size: 256MiB, fs: {type: vfat}, mount: /boot/efi}' });
  }
  const esp = findPartitions(layout, (p) => p.type === 'esp')[0];
  if (kinds.includes('grub-efi') && esp && esp.partition.fs?.type !== 'vfat') {
    throw new ValidationError(`${locateIn(layout, ['disks', esp.disk, 'partitions', esp.index, 'fs'], file)}: an esp needs a vfat filesystem for grub-efi`);
  }
  if (kinds.includes('grub-bios') && disk.table === 'gpt' && !disk.partitions.some((p) => p.type === 'bios_grub')) {
    throw new ValidationError(`${locateIn(layout, ['bootloader', 'kind'], file)}: grub-bios on a gpt disk needs a partition of type bios_grub`, { hint: 'add {type: bios_grub, size: 1MiB} as the first partition' });
  }
  if (kinds.includes('systemd-boot')) throw new ValidationError(`${locateIn(layout, ['bootloader', 'kind'], file)}: systemd-boot is not implemented yet`, { hint: 'use grub-efi' });
}
