import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { Manifest } from '../../src/objects/index.js';
import { bareon } from './cli.js';

/** `bareon diff A B` must say identical; when it does not, its report is the failure message. */
export async function expectIdentical(a: string, b: string): Promise<void> {
  const r = await bareon('bareon', ['diff', a, b]);
  expect(r.exitCode, `bareon diff ${a} ${b}:\n${r.all}`).toBe(0);
  expect(r.stdout).toContain('identical');
}

export const manifestOf = async (dir: string, name: string): Promise<Manifest> =>
  JSON.parse(await readFile(path.join(dir, `${name}.manifest.json`), 'utf8'));

/** Copies one partition out of a raw image, for checkers that cannot take an offset. */
export async function extractPartition(raw: string, offset: number, size: number): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'bareon-part-')), 'part.img');
  await execa('dd', [
    `if=${raw}`,
    `of=${file}`,
    'bs=1M',
    `skip=${offset / 2 ** 20}`,
    `count=${size / 2 ** 20}`,
    'status=none',
  ]);
  return file;
}

/** The qcow2 passes qemu-img check (compat 1.1) and matches the raw image, whose GPT passes sgdisk -v, which stays sparse, and which bmaptool copy writes with its bmap. */
export async function checkDiskFiles(dir: string, name: string): Promise<void> {
  const qcow2 = path.join(dir, `${name}.qcow2`);
  await execa('qemu-img', ['check', qcow2]);
  const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', qcow2])).stdout);
  expect(info['format-specific'].data.compat).toBe('1.1');
  const raw = path.join(dir, `${name}.raw`);
  const v = await execa('sgdisk', ['-v', raw]);
  expect(v.stdout).toContain('No problems found');
  expect(info['virtual-size']).toBe((await stat(raw)).size);
  expect((await stat(raw)).blocks * 512).toBeLessThan((await stat(raw)).size);
  // its block map: listed in the manifest, and bmaptool copy finds it beside the raw image, writes only what it maps and verifies every range
  const bmap = (await manifestOf(dir, name)).artifacts.find((a) => a.format === 'bmap');
  expect(bmap?.uri).toBe(`${name}.bmap`);
  const copyDir = await mkdtemp(path.join(tmpdir(), 'bareon-bmap-copy-'));
  try {
    const copy = path.join(copyDir, 'copy.img');
    const r = await execa('bmaptool', ['copy', raw, copy], { all: true });
    expect(r.all).toContain(`discovered bmap file '${path.join(dir, `${name}.bmap`)}'`);
    await execa('cmp', [raw, copy]);
  } finally {
    await rm(copyDir, { recursive: true, force: true });
  }
}

/** Every filesystem of the raw image is clean at its offset, with the manifest's UUIDs, the ESP holds BOOTX64.EFI, and fstab names the UUIDs. */
export async function checkFilesystems(
  dir: string,
  name: string,
  rootOptions = 'noatime,errors=remount-ro',
): Promise<void> {
  const manifest = await manifestOf(dir, name);
  const raw = path.join(dir, `${name}.raw`);
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
        const files = (
          await execa('mdir', ['-i', file, '-/', '-b', '::/EFI/BOOT'], { env: { MTOOLS_SKIP_CHECK: '1' } })
        ).stdout;
        expect(files).toContain('BOOTX64.EFI');
      } finally {
        await rm(path.dirname(file), { recursive: true, force: true });
      }
    }
  }
  const fstab = (await execa('debugfs', ['-R', 'cat /etc/fstab', `${raw}?offset=${rawArtifact.partitions![2].offset}`]))
    .stdout;
  expect(fstab).toContain(`UUID=${rawArtifact.partitions![2].fs!.uuid}  /  ext4  ${rootOptions}  0  1`);
  expect(fstab).toContain(`UUID=${rawArtifact.partitions![1].fs!.uuid}  /boot/efi  vfat`);
}
