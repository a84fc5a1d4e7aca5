import type { Partition } from '../objects/layout.js';

/** sgdisk type codes for GPT. */
export const GPT_TYPE: Record<Partition['type'], string> = {
  bios_grub: 'EF02',
  esp: 'EF00',
  linux: '8300',
  swap: '8200',
  configdrive: '0700',
  raw: '8300',
  raid: 'FD00',
  lvm: '8E00',
};

/** MBR partition ids for msdos tables (bios_grub has none: the boot code lives in the post-MBR gap). */
export const MSDOS_TYPE: Record<Partition['type'], string | undefined> = {
  bios_grub: undefined,
  esp: 'ef',
  linux: '83',
  swap: '82',
  configdrive: 'c',
  raw: '83',
  raid: 'fd',
  lvm: '8e',
};

/** The GPT type for "/" on x86-64 (discoverable partitions spec), used when a linux partition holds the root. */
export const GPT_ROOT_X86_64 = '8304';
