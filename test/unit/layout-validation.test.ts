import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { bareon } from '../helpers/cli.js';

const esp = { type: 'esp', size: '256MiB', fs: { type: 'vfat', label: 'EFI' }, mount: '/boot/efi' };
const biosGrub = { type: 'bios_grub', size: '1MiB' };
const root = { type: 'linux', size: 'remaining', fs: { type: 'ext4', label: 'root' }, mount: '/' };
const both = { kind: ['grub-bios', 'grub-efi'] };

/**
 * Builds a bootable qcow2 with `layout` while no Docker daemon can be reached: a layout error must
 * stop the build with exit 2 before anything talks to Docker (which would fail with exit 1).
 */
async function buildWith(layout: unknown): Promise<{ exitCode?: number; stderr: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-layout-'));
  const file = path.join(dir, 'bad.yaml');
  await writeFile(
    file,
    stringify({
      name: 'bad',
      base: { distro: 'debian', suite: 'bookworm' },
      bootable: true,
      outputs: ['qcow2'],
      layout,
    }),
  );
  const r = await bareon('build', [file, '-o', path.join(dir, 'out')], {
    env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
  });
  return { exitCode: r.exitCode, stderr: String(r.stderr) };
}

describe('layout errors fail fast, before any container', () => {
  it('sizes that cannot fit', async () => {
    const r = await buildWith({
      disks: [{ id: 'root', size: '1GiB', partitions: [biosGrub, esp, { ...root, size: '900MiB' }] }],
      bootloader: both,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /bad\.yaml:\d+:\d+: layout\.disks\[0\] \(root\): the partitions need 1\.1 GiB but the disk has 1\.0 GiB/,
    );
  });

  it('two remaining partitions on one disk', async () => {
    const r = await buildWith({
      disks: [{ id: 'root', partitions: [biosGrub, { ...esp, size: 'remaining' }, root] }],
      bootloader: both,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /layout\.disks\[0\]\.partitions\[2\]\.size: only one partition per disk may use "remaining"/,
    );
  });

  it('grub-efi without an esp', async () => {
    const r = await buildWith({ disks: [{ id: 'root', partitions: [biosGrub, root] }], bootloader: both });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: layout\.bootloader\.kind: grub-efi needs a partition of type esp/);
  });

  it('Secure Boot and unified kernel images that cannot work', async () => {
    const disks = [{ id: 'root', partitions: [biosGrub, esp, root] }];
    const cases: [unknown, RegExp][] = [
      [
        { kind: ['grub-bios'], secure_boot: true },
        /layout\.bootloader\.secure_boot: secure_boot: picks the distribution's signed shim and GRUB, and bootloader\.kind has no grub-efi/,
      ],
      [
        { kind: ['grub-efi', 'uki'] },
        /layout\.bootloader\.kind: grub-efi and uki both are the ESP's EFI\/BOOT\/BOOTX64\.EFI; choose one/,
      ],
      [
        { kind: ['grub-efi'], sign: { key: 'db.key', cert: 'db.crt' } },
        /layout\.bootloader\.sign: sign: signs a unified kernel image, and bootloader\.kind has no uki/,
      ],
      [{ kind: ['uki'], sign: { key: 'db.key', cert: 'db.crt' } }, /bootloader\.sign\.key: no file \S+db\.key/],
    ];
    for (const [bootloader, error] of cases) {
      const r = await buildWith({ disks, bootloader });
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(error);
    }
    const noEsp = await buildWith({
      disks: [{ id: 'root', partitions: [biosGrub, root] }],
      bootloader: { kind: ['uki'] },
    });
    expect(noEsp.stderr).toMatch(/uki needs a partition of type esp/);
  });

  it('grub-bios on gpt without bios_grub', async () => {
    const r = await buildWith({ disks: [{ id: 'root', table: 'gpt', partitions: [esp, root] }], bootloader: both });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /bad\.yaml:\d+:\d+: layout\.bootloader\.kind: grub-bios on a gpt disk needs a partition of type bios_grub/,
    );
  });

  it('no partition mounted at /', async () => {
    const r = await buildWith({
      disks: [{ id: 'root', partitions: [biosGrub, esp, { ...root, mount: '/srv' }] }],
      bootloader: both,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /bad\.yaml:\d+:\d+: layout\.disks: nothing \(no partition, raid or logical volume\) is mounted at "\/"/,
    );
  });

  it('duplicate labels', async () => {
    const r = await buildWith({
      disks: [{ id: 'root', partitions: [biosGrub, esp, { ...root, size: '2GiB' }, { ...root, mount: '/srv' }] }],
      bootloader: both,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /layout\.disks\[0\]\.partitions\[3\]\.fs\.label: duplicate label "root", also used by disks\[0\]\.partitions\[2\]/,
    );
  });

  it('duplicate mount points', async () => {
    const r = await buildWith({
      disks: [
        {
          id: 'root',
          partitions: [biosGrub, esp, { ...root, size: '2GiB' }, { ...root, fs: { type: 'ext4', label: 'other' } }],
        },
      ],
      bootloader: both,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/layout\.disks\[0\]\.partitions\[3\]\.mount: duplicate mount point "\/"/);
  });

  it('a vfat label over 11 characters', async () => {
    const r = await buildWith({
      disks: [{ id: 'root', partitions: [biosGrub, { ...esp, fs: { type: 'vfat', label: 'EFI-SYSTEM-PART' } }, root] }],
      bootloader: both,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /layout\.disks\[0\]\.partitions\[1\]\.fs\.label: a vfat label has at most 11 characters, "EFI-SYSTEM-PART" has 15/,
    );
  });

  it('passes validation when the layout is sound (and then needs Docker)', async () => {
    const r = await buildWith({ disks: [{ id: 'root', partitions: [biosGrub, esp, root] }], bootloader: both });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cannot reach a Docker daemon/);
  });
});
