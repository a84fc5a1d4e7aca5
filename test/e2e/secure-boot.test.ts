import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { bootToLogin, type Firmware } from '../helpers/qemu.js';

const images = inject('bootableImages').secureBoot;
const SECURE_BOOT_ON = /secureboot: Secure boot enabled/;

async function boot(disk: string, firmware: Firmware, name: string) {
  const r = await bootToLogin(disk, { firmware, name, timeoutMs: 240_000 });
  console.log(
    `${name}, ${firmware}: ${r.reachedLogin ? 'login' : r.refused ? 'refused by the firmware' : 'neither'} after ${r.seconds.toFixed(1)} s`,
  );
  return r;
}

/**
 * Secure Boot enforced by OVMF (q35 with SMM, the secboot build). The image with the distribution's
 * signed chain boots with Microsoft's keys in deploy-boot.test.ts (deployed as a qcow2, and from its
 * rootfs tarball onto a layout); here the same firmware refuses it with GRUB unsigned, and a unified
 * kernel image signed with a site's own db key (Debian's snakeoil key, enrolled in the snakeoil
 * variable store) boots while the same image unsigned is refused.
 */
describe('Secure Boot', () => {
  it('with Microsoft keys enrolled, the firmware refuses the image whose GRUB is unsigned (secure_boot: false)', async () => {
    const r = await boot(images.unsigned, 'secure-boot-ms', 'sb-unsigned-grub');
    expect(r.refused, `the firmware did not refuse it: ${r.report}`).toBe(true);
    expect(r.reachedLogin).toBe(false);
  });

  it('with a site key enrolled, a unified kernel image signed with it boots to login, Secure Boot on', async () => {
    const r = await boot(images.uki, 'secure-boot-snakeoil', 'sb-uki-signed');
    expect(r.reachedLogin, r.report).toBe(true);
    expect(r.log).toMatch(SECURE_BOOT_ON);
  });

  it('the same unified kernel image unsigned is refused by that firmware', async () => {
    const r = await boot(images.ukiUnsigned, 'secure-boot-snakeoil', 'sb-uki-unsigned');
    expect(r.refused, `the firmware did not refuse it: ${r.report}`).toBe(true);
  });

  it("the UKI on the ESP is signed by the site's certificate, and holds the kernel, initramfs and command line", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'uki-check-'));
    const efi = path.join(dir, 'BOOTX64.EFI');
    // the ESP is partition 1; mtools reads the UKI out of the vfat image without mounting it
    const raw = path.join(dir, 'uki.raw');
    await execa('qemu-img', ['convert', '-O', 'raw', images.uki, raw]);
    const first = (await execa('sgdisk', ['-i', '1', raw])).stdout.match(/First sector: (\d+)/)![1];
    await execa('mcopy', ['-i', `${raw}@@${Number(first) * 512}`, '::/EFI/BOOT/BOOTX64.EFI', efi]);
    const cert = path.join(path.dirname(path.dirname(images.uki)), 'db.crt');
    const verify = await execa('sbverify', ['--cert', cert, efi], { reject: false, all: true });
    expect(verify.exitCode, String(verify.all)).toBe(0);
    const sections = (await execa('objdump', ['-h', efi])).stdout;
    for (const name of ['.osrel', '.cmdline', '.linux', '.initrd']) expect(sections).toContain(name);
    await execa('objcopy', ['-O', 'binary', '--only-section=.cmdline', efi, path.join(dir, 'cmdline')]);
    expect(await readFile(path.join(dir, 'cmdline'), 'latin1')).toMatch(
      /^root=UUID=[0-9a-f-]{36} ro console=ttyS0,115200n8\0$/,
    );
    await rm(dir, { recursive: true, force: true });
  });
});
