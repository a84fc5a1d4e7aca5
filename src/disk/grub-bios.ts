import { SECTOR } from './geometry.js';

/** Offsets grub-bios-setup patches (grub-core/boot/i386/pc/boot.S and diskboot.S). */
const BOOT_KERNEL_SECTOR = 0x5c;
const BOOT_DRIVE_CHECK = 0x66;
const DISKBOOT_BLOCKLIST_START = 0x200 - 0x0c;
/** The MBR boot code area; the disk signature and partition table after it are kept. */
export const MBR_CODE_BYTES = 440;

export interface BiosBootCode {
  /** The first 440 bytes of the MBR. */
  mbrCode: Buffer;
  /** core.img with its blocklist pointing at the sectors after its first. */
  core: Buffer;
  /** Sector where core.img goes. */
  coreSector: number;
}

/**
 * What grub-bios-setup writes, done on buffers (grub-bios-setup refuses plain image files): boot.img's
 * code points at core.img's sector, the BIOS drive check is skipped as for hard disks, and
 * core.img's first blocklist starts at the sector after it.
 */
export function embedGrubBios(bootImg: Buffer, coreImg: Buffer, coreSector: number, room: number): BiosBootCode {
  if (bootImg.length !== SECTOR) throw new Error(`boot.img is ${bootImg.length} bytes, expected ${SECTOR}`);
  const sectors = Math.ceil(coreImg.length / SECTOR);
  if (sectors > room) throw new Error(`core.img needs ${sectors} sectors but only ${room} are free for it`);
  const mbrCode = Buffer.from(bootImg.subarray(0, MBR_CODE_BYTES));
  mbrCode.writeBigUInt64LE(BigInt(coreSector), BOOT_KERNEL_SECTOR);
  mbrCode[BOOT_DRIVE_CHECK] = 0x90;
  mbrCode[BOOT_DRIVE_CHECK + 1] = 0x90;
  const core = Buffer.alloc(sectors * SECTOR);
  coreImg.copy(core);
  core.writeBigUInt64LE(BigInt(coreSector + 1), DISKBOOT_BLOCKLIST_START);
  return { mbrCode, core, coreSector };
}
