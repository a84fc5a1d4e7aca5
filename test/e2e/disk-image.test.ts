import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { hygieneItem } from '../../src/objects/hygiene.js';
import { bareon } from '../helpers/cli.js';
import { checkDiskFiles, checkFilesystems, expectIdentical, manifestOf } from '../helpers/disk-checks.js';
import { TEST_EPOCH } from '../helpers/images.js';

const images = inject('bootableImages');

describe('bareon-build profiles/debian-bootable.yaml', () => {
  it('writes a qcow2 that passes qemu-img check, compat 1.1, and a raw image whose GPT passes sgdisk -v', async () => {
    await checkDiskFiles(images.gpt, 'debian-bootable');
  });

  it('has filesystems that fsck -n finds clean at their offsets, with the UUIDs the manifest records', async () => {
    await checkFilesystems(images.gpt, 'debian-bootable');
  });

  it('built again with the same SOURCE_DATE_EPOCH and a seeded layout, gives byte-identical raw and qcow2 files', async () => {
    // the second build takes its root filesystem from the step cache, like the first, and makes its
    // disk from scratch: partitions, filesystems, GRUB and the qcow2 conversion (that rebuilding the
    // root filesystem gives the same bytes is reproducible.test.ts, on debian-minimal)
    const out = await mkdtemp(path.join(tmpdir(), 'bareon-repro-disk-'));
    try {
      const r = await bareon('build', [images.gptProfile, '-o', out], {
        env: { SOURCE_DATE_EPOCH: String(TEST_EPOCH) },
      });
      expect(r.exitCode, String(r.all).slice(-3000)).toBe(0);
      for (const format of ['raw', 'qcow2'])
        await expectIdentical(
          path.join(images.gpt, `debian-bootable.${format}`),
          path.join(out, `debian-bootable.${format}`),
        );
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('writes an msdos image that passes sfdisk --verify, with /boot, swap and / partitions', async () => {
    const qcow2 = path.join(images.msdos, 'debian-msdos.qcow2');
    await execa('qemu-img', ['check', qcow2]);
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-msdos-'));
    const raw = path.join(dir, 'disk.raw');
    try {
      await execa('qemu-img', ['convert', '-O', 'raw', qcow2, raw]);
      await execa('sfdisk', ['--verify', raw]);
      const dump = (await execa('sfdisk', ['--dump', raw])).stdout;
      expect(dump).toMatch(/label: dos/);
      expect(dump).toMatch(/type=83, bootable/);
      expect(dump).toMatch(/type=82/);
      const manifest = await manifestOf(images.msdos, 'debian-msdos');
      for (const part of manifest.artifacts[0].partitions!)
        if (part.fs?.type === 'ext4') await execa('e2fsck', ['-fn', `${raw}?offset=${part.offset}`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Booting two deploys of this image, each with its own machine-id and host keys: deploy-boot.test.ts.
describe('first-boot hygiene of the bootable profile', () => {
  it('its rootfs artifact carries no host keys, machine-id, seed, apt state, build logs or backups', async () => {
    const tarFile = path.join(images.tar, 'debian-bootable-tar.tar.zst');
    const listing = (await execa('tar', ['--zstd', '-tvf', tarFile], { maxBuffer: 1 << 28 })).stdout.split('\n');
    const names = listing.map((l) =>
      l
        .split(/\s+/)
        .slice(5)
        .join(' ')
        .replace(/ -> .*$/, ''),
    );
    expect(names.filter((n) => hygieneItem(n))).toEqual([]);
    expect(names).toContain('etc/systemd/system/ssh.service.d/bareon-host-keys.conf');
    expect(listing.find((l) => l.endsWith(' etc/machine-id'))).toMatch(/^-r--r--r-- root\/root\s+0 /);
  });
});
