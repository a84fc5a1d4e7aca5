import { z } from 'zod';
import { DiskMatchSchema } from './disk-match.js';
import { ConfigDriveSchema } from './configdrive.js';
import { sizeField } from './size.js';

export const FS_TYPES = ['ext4', 'ext3', 'ext2', 'xfs', 'btrfs', 'vfat', 'swap'] as const;
export const PARTITION_TYPES = ['bios_grub', 'esp', 'linux', 'swap', 'configdrive', 'raw'] as const;

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a UUID such as 0f3c…-…');

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
      ctx.addIssue({ code: 'custom', path: ['label'], message: `a vfat label has at most 11 characters, "${fs.label}" has ${fs.label.length}` });
    }
    if (fs.type === 'vfat' && fs.uuid && !/^[0-9a-f]{4}-?[0-9a-f]{4}$/i.test(fs.uuid)) {
      ctx.addIssue({ code: 'custom', path: ['uuid'], message: 'a vfat volume id looks like "1A2B-3C4D"' });
    }
    if (fs.type !== 'vfat' && fs.uuid && !uuid.safeParse(fs.uuid).success) {
      ctx.addIssue({ code: 'custom', path: ['uuid'], message: 'expected a UUID such as 3f2504e0-4f89-11d3-9a0c-0305e82c3301' });
    }
  });

export const PartitionSchema = z.strictObject({
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
      if (i >= 0) ctx.addIssue({ code: 'custom', path: ['partitions', i, 'type'], message: 'bios_grub exists on gpt only; msdos disks keep the boot code after the MBR' });
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

export const BootloaderSchema = z.strictObject({
  kind: z.array(z.enum(['grub-bios', 'grub-efi', 'systemd-boot'])).min(1),
  cmdline: z.string().default(''),
  /** Disk ids the boot code is installed on; the disk holding / by default. */
  disks: z.array(z.string()).optional(),
  timeout: z.number().int().min(0).default(1),
});

export const LayoutSchema = z
  .strictObject({
    disks: z.array(DiskSchema).min(1),
    bootloader: BootloaderSchema.optional(),
    /** A cloud-init config drive written after the OS (the configdrive action). */
    configdrive: ConfigDriveSchema.optional(),
    /** Derive every UUID not given from this seed, for reproducible images. */
    seed: z.string().optional(),
  })
  .superRefine((layout, ctx) => {
    const labels = new Map<string, string>();
    const mounts = new Map<string, string>();
    layout.disks.forEach((disk, d) =>
      disk.partitions.forEach((part, p) => {
        const here = `disks[${d}].partitions[${p}]`;
        if (part.fs?.label) {
          const seen = labels.get(part.fs.label);
          if (seen) ctx.addIssue({ code: 'custom', path: ['disks', d, 'partitions', p, 'fs', 'label'], message: `duplicate label "${part.fs.label}", also used by ${seen}` });
          else labels.set(part.fs.label, here);
        }
        if (part.mount) {
          const seen = mounts.get(part.mount);
          if (seen) ctx.addIssue({ code: 'custom', path: ['disks', d, 'partitions', p, 'mount'], message: `duplicate mount point "${part.mount}", also used by ${seen}` });
          else mounts.set(part.mount, here);
          if (!part.fs || part.fs.type === 'swap') ctx.addIssue({ code: 'custom', path: ['disks', d, 'partitions', p, 'mount'], message: 'a mount point needs a filesystem (fs.type) that is not swap' });
        }
      }),
    );
  });

export type Filesystem = z.infer<typeof FilesystemSchema>;
export type Partition = z.infer<typeof PartitionSchema>;
export type Disk = z.infer<typeof DiskSchema>;
export type Bootloader = z.infer<typeof BootloaderSchema>;
export type Layout = z.infer<typeof LayoutSchema>;
export type LayoutInput = z.input<typeof LayoutSchema>;
