import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { bootToLogin } from '../helpers/qemu.js';

const images = inject('bootableImages');

/**
 * The images as built, untouched. The GPT image boots in deploy-boot.test.ts, from its deploys: with
 * OVMF onto a loop device (the image's bytes over its extent, the backup GPT moved to the disk's end)
 * and with SeaBIOS after --grow. The msdos image boots here.
 */
describe('booting the built images under QEMU (TCG)', () => {
  it('the msdos layout reaches login: with SeaBIOS', async () => {
    const r = await bootToLogin(path.join(images.msdos, 'debian-msdos.qcow2'), {
      firmware: 'bios',
      name: 'msdos-qcow2',
      timeoutMs: 240_000,
    });
    console.log(`msdos qcow2, SeaBIOS: login after ${r.seconds.toFixed(1)} s`);
    expect(r.reachedLogin, r.report).toBe(true);
    expect(r.log).not.toMatch(/fsck not present/);
  });
});
