import { ValidationError } from '../core/errors.js';
import type { Layout, Partition } from '../objects/layout.js';
import { formatPath, locateIn } from '../objects/yaml-source.js';
import { layoutVolumes, volumeDisks, type Volume } from '../objects/volumes.js';
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
    disk.partitions.flatMap((partition, index) =>
      match(partition) ? [{ disk: d, index, partition, path: formatPath(['disks', d, 'partitions', index]) }] : [],
    ),
  );
}

/** The partition, array or logical volume mounted at `/`, or a ValidationError saying it is missing. */
export function rootVolume(layout: Layout, file = 'layout'): Volume {
  const root = layoutVolumes(layout).find((v) => v.mount === '/');
  if (!root)
    throw new ValidationError(
      `${locateIn(layout, ['disks'], file)}: nothing (no partition, raid or logical volume) is mounted at "/"`,
      { hint: 'add mount: / to what holds the root filesystem' },
    );
  return root;
}

/** The partition mounted at `/`, for what writes a root onto a plain partition (disk images, filesystem images). */
export function rootPartition(layout: Layout, file = 'layout'): FoundPartition {
  const root = rootVolume(layout, file);
  if (root.kind !== 'partition') {
    throw new ValidationError(
      `${locateIn(layout, root.path, file)}: the root is on ${root.kind === 'raid' ? `md array ${root.raid.id}` : `logical volume ${root.vg.id}/${root.lv.name}`}; this needs it on a partition`,
      {
        hint: 'md and LVM are made when deploying a rootfs tarball onto disks (bareon-deploy, or the deploy agent); disk and filesystem images put the root on a partition',
      },
    );
  }
  return { disk: root.disk, index: root.index, partition: root.partition, path: formatPath(root.path) };
}

/** Refuses md arrays and volume groups where `who` writes plain partitions only (disk images). */
export function refuseStorageStack(layout: Layout, who: string, file = 'layout'): void {
  const [kind, list] = layout.raids.length
    ? (['raids', layout.raids] as const)
    : (['volume_groups', layout.volume_groups] as const);
  if (list.length) {
    throw new ValidationError(
      `${locateIn(layout, [kind], file)}: ${who} writes plain partitions; md arrays and LVM are made on the machine, by bareon-deploy`,
      {
        hint: 'build a rootfs (tar.zst) and deploy it with this layout, or use a layout without raids: and volume_groups:',
      },
    );
  }
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
  const root = rootVolume(layout, file);
  const ids = layout.bootloader?.disks;
  const unknown = ids?.find((id) => !layout.disks.some((d) => d.id === id));
  if (unknown)
    throw new ValidationError(`${locateIn(layout, ['bootloader', 'disks'], file)}: no disk has the id "${unknown}"`, {
      hint: `disk ids: ${layout.disks.map((d) => d.id).join(', ')}`,
    });
  const bootDisks = ids
    ? layout.disks.filter((d) => ids.includes(d.id))
    : volumeDisks(layout, root).map((d) => layout.disks[d]);
  const efi = kinds.find((k) => k === 'grub-efi' || k === 'uki');
  if (kinds.includes('grub-efi') && kinds.includes('uki'))
    throw new ValidationError(
      `${locateIn(layout, ['bootloader', 'kind'], file)}: grub-efi and uki both are the ESP's EFI/BOOT/BOOTX64.EFI; choose one`,
      {
        hint: 'uki for a signed kernel image of your own keys, grub-efi for GRUB (signed by the distribution with secure_boot)',
      },
    );
  if (layout.bootloader?.sign && !kinds.includes('uki'))
    throw new ValidationError(
      `${locateIn(layout, ['bootloader', 'sign'], file)}: sign: signs a unified kernel image, and bootloader.kind has no uki`,
      { hint: 'add uki to bootloader.kind (instead of grub-efi), or drop sign:' },
    );
  if (efi && !findPartitions(layout, (p) => p.type === 'esp').length) {
    throw new ValidationError(
      `${locateIn(layout, ['bootloader', 'kind'], file)}: ${efi} needs a partition of type esp`,
      { hint: 'add {type: esp, size: 256MiB, fs: {type: vfat}, mount: /boot/efi}' },
    );
  }
  const esp = findPartitions(layout, (p) => p.type === 'esp')[0];
  if (efi && esp && esp.partition.fs?.type !== 'vfat') {
    throw new ValidationError(
      `${locateIn(layout, ['disks', esp.disk, 'partitions', esp.index, 'fs'], file)}: an esp needs a vfat filesystem for ${efi}`,
    );
  }
  const noBiosGrub = bootDisks.find(
    (disk) => disk.table === 'gpt' && !disk.partitions.some((p) => p.type === 'bios_grub'),
  );
  if (kinds.includes('grub-bios') && noBiosGrub) {
    throw new ValidationError(
      `${locateIn(layout, ['bootloader', 'kind'], file)}: grub-bios on a gpt disk needs a partition of type bios_grub${bootDisks.length > 1 ? ` (disk "${noBiosGrub.id}" has none)` : ''}`,
      { hint: 'add {type: bios_grub, size: 1MiB} as the first partition' },
    );
  }
  const noEsp = bootDisks.find((disk) => !disk.partitions.some((p) => p.type === 'esp'));
  if (efi && noEsp && bootDisks.length > 1) {
    throw new ValidationError(
      `${locateIn(layout, ['bootloader', 'kind'], file)}: ${efi} goes on every boot disk, and disk "${noEsp.id}" has no esp`,
      { hint: 'add {type: esp, size: 256MiB, fs: {type: vfat}} to it, or list the boot disks in bootloader.disks' },
    );
  }
  if (layout.bootloader?.secure_boot && !kinds.includes('grub-efi'))
    throw new ValidationError(
      `${locateIn(layout, ['bootloader', 'secure_boot'], file)}: secure_boot: picks the distribution's signed shim and GRUB, and bootloader.kind has no grub-efi`,
      {
        hint: kinds.includes('uki')
          ? 'a uki is signed with sign: {key, cert}; drop secure_boot'
          : 'add grub-efi to bootloader.kind, or drop secure_boot',
      },
    );
  if (kinds.includes('systemd-boot'))
    throw new ValidationError(
      `${locateIn(layout, ['bootloader', 'kind'], file)}: systemd-boot is not implemented yet`,
      { hint: 'use grub-efi' },
    );
}
