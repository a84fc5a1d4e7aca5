import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { bootToLogin } from '../helpers/qemu.js';

const images = inject('bootableImages');

/**
 * The images as built, untouched. The GPT image's BIOS path boots in deploy-boot.test.ts, from its
 * deploy (equal to the image over its extent, then grown), and the msdos image's here.
 */
describe('booting the built images under QEMU (TCG)', () => {
  it('the GPT qcow2 reaches login: with OVMF (UEFI)', async () => {
    const r = await bootToLogin(path.join(images.gpt, 'debian-bootable.qcow2'), { firmware: 'uefi', name: 'gpt-qcow2', timeoutMs: 240_000 });
    console.log(`gpt qcow2, OVMF: login after ${r.seconds.toFixed(1)} s`);
    expect(r.reachedLogin, `no login prompt within 240 s; serial log kept at ${r.keptLog}`).toBe(true);
    expect(r.log).toContain('bareon-vm login:');
  });

  it('the msdos layout reaches login: with SeaBIOS', async () => {
    const r = await bootToLogin(path.join(images.msdos, 'debian-msdos.qcow2'), { firmware: 'bios', name: 'msdos-qcow2', timeoutMs: 240_000 });
    console.log(`msdos qcow2, SeaBIOS: login after ${r.seconds.toFixed(1)} s`);
    expect(r.reachedLogin, `no login prompt within 240 s; serial log kept at ${r.keptLog}`).toBe(true);
    expect(r.log).not.toMatch(/fsck not present/);
  });
});
