import { z } from 'zod';
import { DiskMatchSchema } from './disk-match.js';
import { ConfigDriveSchema } from './configdrive-schema.js';
import { sizeField } from './size-field.js';
import { checkLayoutVolumes } from './volume-checks.js';

export const FS_TYPES = ['ext4', 'ext3', 'ext2', 'xfs', 'btrfs', 'vfat', 'swap'] as const;
/** raid: a member of an md array (raids:); lvm: a physical volume of a volume group (volume_groups:). */
export const PARTITION_TYPES = ['bios_grub', 'esp', 'linux', 'swap', 'configdrive', 'raw', 'raid', 'lvm'] as const;
export const RAID_LEVELS = [0, 1, 5, 10] as const;

const id = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-"');

const uuid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a UUID such as 0f3c…-…');

export const FilesystemSchema = z
  .strictObject({
    type: z.enum(FS_TYPES),
    label: z.string().min(1).optional(),
    /** A UUID; for vfat a volume id such as "1A2B-3C4D". Random, or derived from the layout's seed, when absent. */
    uuid: z.string().optional(),
    /** Mount options for fstab. */
    options: z.array(z.string()).default([]),
    /** Extra mkfs arguments. */
    mkfs_options: z.array(z.string()).default([]),
  })
  .superRefine((fs, ctx) => {
    if (fs.type === 'vfat' && fs.label && fs.label.length > 11) {
      ctx.addIssue({
        code: 'custom',
        path: ['label'],
        message: `a vfat label has at most 11 characters, "${fs.label}" has ${fs.label.length}`,
      });
    }
    if (fs.type === 'vfat' && fs.uuid && !/^[0-9a-f]{4}-?[0-9a-f]{4}$/i.test(fs.uuid)) {
      ctx.addIssue({ code: 'custom', path: ['uuid'], message: 'a vfat volume id looks like "1A2B-3C4D"' });
    }
    if (fs.type !== 'vfat' && fs.uuid && !uuid.safeParse(fs.uuid).success) {
      ctx.addIssue({
        code: 'custom',
        path: ['uuid'],
        message: 'expected a UUID such as 3f2504e0-4f89-11d3-9a0c-0305e82c3301',
      });
    }
  });

export const PartitionSchema = z.strictObject({
  /** Names the partition for raids[].devices and volume_groups[].devices. */
  id: id.optional(),
  type: z.enum(PARTITION_TYPES),
  size: sizeField({ allowRelative: true }),
  /** GPT partition name (defaults to the type). */
  name: z.string().max(36).optional(),
  /** GPT partition UUID; random or derived from the seed when absent. */
  uuid: uuid.optional(),
  /** On a redeploy: leave this partition and its data as they are (it must be where the new table puts it). */
  keep: z.boolean().default(false),
  fs: FilesystemSchema.optional(),
  mount: z.string().startsWith('/', 'a mount point is an absolute path').optional(),
  flags: z.array(z.enum(['boot', 'legacy_boot'])).default([]),
});

export const DiskSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-"'),
    table: z.enum(['gpt', 'msdos']).default('gpt'),
    /** For images: auto (content + headroom) or a size. Ignored for real disks. */
    size: z.union([z.literal('auto'), sizeField({ allowRelative: false })]).default('auto'),
    /** For deploy: the block device or image file this disk maps to. */
    device: z.string().optional(),
    /** For deploy: hints that choose this disk among the machine's (serial, wwn, size ">= 60GiB"…). */
    match: DiskMatchSchema.optional(),
    partitions: z.array(PartitionSchema).min(1),
  })
  .superRefine((disk, ctx) => {
    if (disk.table === 'msdos') {
      const i = disk.partitions.findIndex((p) => p.type === 'bios_grub');
      if (i >= 0)
        ctx.addIssue({
          code: 'custom',
          path: ['partitions', i, 'type'],
          message: 'bios_grub exists on gpt only; msdos disks keep the boot code after the MBR',
        });
    }
    const remaining = disk.partitions.flatMap((p, i) => (p.size.kind === 'remaining' ? [i] : []));
    if (remaining.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['partitions', remaining[1], 'size'],
        message: `only one partition per disk may use "remaining" (partitions ${remaining.join(' and ')} both do)`,
      });
    }
  });

/** An md array over partitions (type raid) of one or more disks. */
export const RaidSchema = z.strictObject({
  id,
  level: z.union(
    RAID_LEVELS.map((l) => z.literal(l)) as [z.ZodLiteral<0>, z.ZodLiteral<1>, z.ZodLiteral<5>, z.ZodLiteral<10>],
  ),
  /** Partition ids (type raid). */
  devices: z.array(z.string()).min(2, 'an array needs at least two devices'),
  /** md superblock format: 1.2 (at the start), or 1.0 (at the end, for a mirrored ESP that firmware reads as plain FAT). */
  metadata: z.enum(['1.2', '1.0']).default('1.2'),
  fs: FilesystemSchema.optional(),
  mount: z.string().startsWith('/', 'a mount point is an absolute path').optional(),
});

/** An LVM logical volume: a size in units, % of the volume group, or remaining. */
export const LogicalVolumeSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/, 'an LVM name: letters, digits, "+", "_", "." and "-"'),
  size: sizeField({ allowRelative: true }),
  fs: FilesystemSchema.optional(),
  mount: z.string().startsWith('/', 'a mount point is an absolute path').optional(),
});

/** An LVM volume group over partitions (type lvm) or md arrays. */
export const VolumeGroupSchema = z.strictObject({
  /** The volume group's name. */
  id: z.string().regex(/^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/, 'an LVM name: letters, digits, "+", "_", "." and "-"'),
  /** Partition ids (type lvm) or raid ids. */
  devices: z.array(z.string()).min(1),
  volumes: z.array(LogicalVolumeSchema).default([]),
});

export const BootloaderSchema = z.strictObject({
  /**
   * grub-bios, grub-efi, or uki: a unified kernel image (systemd's EFI stub with the kernel, the
   * initramfs and the command line) as the ESP's EFI/BOOT/BOOTX64.EFI.
   */
  kind: z.array(z.enum(['grub-bios', 'grub-efi', 'uki', 'systemd-boot'])).min(1),
  cmdline: z.string().default(''),
  /** Disk ids the boot code is installed on; the disk holding / by default. */
  disks: z.array(z.string()).optional(),
  timeout: z.number().int().min(0).default(1),
  /**
   * grub-efi through the distribution's signed chain (shim, then the signed GRUB, then the signed
   * kernel), which boots with Secure Boot enforced; unset: when the root filesystem has it.
   */
  secure_boot: z.boolean().optional(),
  /**
   * The Secure Boot db key and certificate (PEM files, relative to the layout) that sign the uki
   * with sbsign, for machines that enroll a site's own keys; without it the uki is unsigned.
   */
  sign: z.strictObject({ key: z.string().min(1), cert: z.string().min(1) }).optional(),
});

export const LayoutSchema = z
  .strictObject({
    disks: z.array(DiskSchema).min(1),
    bootloader: BootloaderSchema.optional(),
    /** A cloud-init config drive written after the OS (the configdrive action). */
    configdrive: ConfigDriveSchema.optional(),
    /** md arrays, made after partitioning (deploy only). */
    raids: z.array(RaidSchema).default([]),
    /** LVM volume groups with their logical volumes, made after the arrays (deploy only). */
    volume_groups: z.array(VolumeGroupSchema).default([]),
    /** Derive every UUID not given from this seed, for reproducible images. */
    seed: z.string().optional(),
    /** Actions (out-of-tree ones too) that join the deploy of this layout, each where its plugin places it. */
    with: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'an action name such as bootloader')).default([]),
  })
  .superRefine(checkLayoutVolumes);

export type Filesystem = z.infer<typeof FilesystemSchema>;
export type Partition = z.infer<typeof PartitionSchema>;
export type Disk = z.infer<typeof DiskSchema>;
export type Bootloader = z.infer<typeof BootloaderSchema>;
export type Raid = z.infer<typeof RaidSchema>;
export type LogicalVolume = z.infer<typeof LogicalVolumeSchema>;
export type VolumeGroup = z.infer<typeof VolumeGroupSchema>;
export type Layout = z.infer<typeof LayoutSchema>;
export type LayoutInput = z.input<typeof LayoutSchema>;
