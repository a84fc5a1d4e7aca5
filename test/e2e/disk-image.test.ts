import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { Manifest } from '../../src/objects/index.js';

const images = inject('bootableImages');
const manifestOf = async (dir: string, name: string): Promise<Manifest> => JSON.parse(await readFile(path.join(dir, `${name}.manifest.json`), 'utf8'));

/** Copies one partition out of a raw image, for checkers that cannot take an offset. */
async function extractPartition(raw: string, offset: number, size: number): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'bareon-part-')), 'part.img');
  await execa('dd', [`if=${raw}`, `of=${file}`, 'bs=1M', `skip=${offset / 2 ** 20}`, `count=${size / 2 ** 20}`, 'status=none']);
  return file;
}

describe('bareon-build profiles/debian-bootable.yaml', () => {
  it('writes a qcow2 that passes qemu-img check, compat 1.1, and a raw image whose GPT passes sgdisk -v', async () => {
    const qcow2 = path.join(images.gpt, 'debian-bootable.qcow2');
    await execa('qemu-img', ['check', qcow2]);
    const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', qcow2])).stdout);
    expect(info['format-specific'].data.compat).toBe('1.1');
    const raw = path.join(images.gpt, 'debian-bootable.raw');
    const v = await execa('sgdisk', ['-v', raw]);
    expect(v.stdout).toContain('No problems found');
    expect(info['virtual-size']).toBe((await stat(raw)).size);
    // the raw image stays sparse on the host
    expect((await stat(raw)).blocks * 512).toBeLessThan((await stat(raw)).size);
  });

  it('has filesystems that fsck -n finds clean at their offsets, with the UUIDs the manifest records', async () => {
    const manifest = await manifestOf(images.gpt, 'debian-bootable');
    const raw = path.join(images.gpt, 'debian-bootable.raw');
    const rawArtifact = manifest.artifacts.find((a) => a.format === 'raw')!;
    expect(rawArtifact.partitions!.map((p) => p.type)).toEqual(['bios_grub', 'esp', 'linux']);
    for (const part of rawArtifact.partitions!) {
      if (part.fs?.type === 'ext4') {
        await execa('e2fsck', ['-fn', `${raw}?offset=${part.offset}`]);
        const dumpe2fs = (await execa('dumpe2fs', ['-h', `${raw}?offset=${part.offset}`], { reject: false })).stdout;
        expect(dumpe2fs).toMatch(new RegExp(`Filesystem UUID:\\s+${part.fs.uuid}`));
      }
      if (part.fs?.type === 'vfat') {
        const file = await extractPartition(raw, part.offset, part.size);
        try {
          await execa('fsck.vfat', ['-n', file]);
          const files = (await execa('mdir', ['-i', file, '-/', '-b', '::/EFI/BOOT'], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout;
          expect(files).toContain('BOOTX64.EFI');
        } finally {
          await rm(path.dirname(file), { recursive: true, force: true });
        }
      }
    }
    const fstab = (await execa('debugfs', ['-R', 'cat /etc/fstab', `${raw}?offset=${rawArtifact.partitions![2].offset}`])).stdout;
    expect(fstab).toContain(`UUID=${rawArtifact.partitions![2].fs!.uuid}  /  ext4  noatime,errors=remount-ro  0  1`);
    expect(fstab).toContain(`UUID=${rawArtifact.partitions![1].fs!.uuid}  /boot/efi  vfat`);
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
      for (const part of manifest.artifacts[0].partitions!) if (part.fs?.type === 'ext4') await execa('e2fsck', ['-fn', `${raw}?offset=${part.offset}`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
