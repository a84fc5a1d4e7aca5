import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { byPathFromSysfs, listDisks, vpdSerial } from '../../src/host/disk-inventory.js';
import {
  DiskMatchSchema,
  matchesHints,
  parseHintFlags,
  parseSizeHint,
  selectDisk,
  type MatchableDisk,
} from '../../src/objects/disk-match.js';
import { LayoutSchema } from '../../src/objects/layout.js';

const GiB = 2 ** 30;
const disk = (over: Partial<MatchableDisk>): MatchableDisk => ({
  name: 'vda',
  path: '/dev/vda',
  size: 20 * GiB,
  rotational: false,
  ...over,
});
const a = disk({
  name: 'vda',
  path: '/dev/vda',
  serial: 'disk-a',
  wwn: 'naa.5000c500a1b2c3d4',
  model: 'QEMU HARDDISK',
});
const b = disk({ name: 'vdb', path: '/dev/vdb', serial: 'disk-b', size: 80 * GiB, rotational: true });
const c = disk({ name: 'vdc', path: '/dev/vdc', serial: 'disk-c', size: 80 * GiB, rotational: true });

describe('disk hints', () => {
  it('parse sizes with operators', () => {
    expect(parseSizeHint('>= 60GiB')).toEqual({ op: '>=', bytes: 60 * GiB });
    expect(parseSizeHint('20GiB')).toEqual({ op: '==', bytes: 20 * GiB });
    expect(parseSizeHint('<1TB')).toEqual({ op: '<', bytes: 1e12 });
    expect(parseSizeHint('>= lots')).toMatch(/not a size/);
    expect(DiskMatchSchema.safeParse({ size: '>= 50%' }).success).toBe(false);
    expect(DiskMatchSchema.safeParse({}).success).toBe(false);
  });

  it('match every given attribute, strings whole and case-insensitively, WWNs without their prefix', () => {
    expect(matchesHints(a, { serial: 'DISK-A' })).toBe(true);
    expect(matchesHints(a, { serial: 'disk' })).toBe(false);
    expect(matchesHints(a, { wwn: '0x5000C500A1B2C3D4' })).toBe(true);
    expect(matchesHints(a, { name: '/dev/vda', size: '< 60GiB', rotational: false })).toBe(true);
    expect(matchesHints(b, { size: '>= 60GiB', rotational: false })).toBe(false);
    expect(matchesHints(b, { model: 'QEMU HARDDISK' })).toBe(false); // b has no model
  });

  it('select exactly one disk; none or two is an error that lists the disks seen', () => {
    expect(selectDisk({ serial: 'disk-b' }, [a, b, c])).toBe(b);
    const none = selectDisk({ serial: 'disk-z' }, [a, b, c]) as string;
    expect(none).toMatch(/^no disk matches serial=disk-z; disks seen:/);
    expect(none).toContain('/dev/vdb: size=80.0 GiB (85899345920) rotational=true serial=disk-b');
    const two = selectDisk({ size: '>= 60GiB' }, [a, b, c]) as string;
    expect(two).toMatch(/^2 disks match size=">= 60GiB" \(\/dev\/vdb, \/dev\/vdc\); add a hint/);
  });

  it('come from --target-hint KEY=VALUE flags, checked like the layout field', () => {
    expect(parseHintFlags(['serial=disk-a', 'rotational=false', 'size=>= 10GiB'])).toEqual({
      serial: 'disk-a',
      rotational: false,
      size: '>= 10GiB',
    });
    expect(parseHintFlags(['serial'])).toMatch(/use KEY=VALUE/);
    expect(parseHintFlags(['colour=blue'])).toMatch(/--target-hint: .*colour/);
    expect(parseHintFlags(['size=big'])).toMatch(/size hint "big"/);
  });

  it('are part of a layout disk', () => {
    const layout = LayoutSchema.parse({
      disks: [
        { id: 'a', match: { serial: 'disk-a', size: '>= 10GiB' }, partitions: [{ type: 'linux', size: 'remaining' }] },
      ],
    });
    expect(layout.disks[0].match).toEqual({ serial: 'disk-a', size: '>= 10GiB' });
  });
});

describe('the disk inventory', () => {
  async function fakeSys(): Promise<{ sys: string; dev: string }> {
    const root = await mkdtemp(path.join(tmpdir(), 'bareon-sys-'));
    const sys = path.join(root, 'sys');
    const dev = path.join(root, 'dev');
    const add = async (name: string, device: string, attrs: Record<string, string | Buffer>) => {
      const devDir = path.join(sys, 'devices', device);
      await mkdir(path.join(sys, 'block', name, 'queue'), { recursive: true });
      await mkdir(devDir, { recursive: true });
      await symlink(devDir, path.join(sys, 'block', name, 'device'));
      for (const [k, v] of Object.entries(attrs)) {
        await mkdir(path.dirname(path.join(sys, 'block', name, k)), { recursive: true });
        await writeFile(path.join(sys, 'block', name, k), v);
      }
    };
    await add('vda', 'pci0000:00/0000:00:04.0/virtio2', {
      size: '41943040\n',
      'queue/rotational': '1\n',
      serial: 'disk-a\n',
      removable: '0\n',
      ro: '0\n',
    });
    await add('sda', 'pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0', {
      size: '2048\n',
      'queue/rotational': '0\n',
      'device/model': 'QEMU HARDDISK   \n',
      'device/vendor': 'ATA     \n',
      'device/wwid': 'naa.5000c500a1b2c3d4\n',
      'device/vpd_pg80': Buffer.concat([Buffer.from([0, 0x80, 0, 8]), Buffer.from('SER-1234')]),
    });
    await add('loop0', 'virtual/block/loop0', { size: '2048\n' });
    await mkdir(dev, { recursive: true });
    return { sys, dev };
  }

  it('reads serials (also from SCSI VPD page 0x80), WWNs, models, sizes and derives by-path without udev', async () => {
    const { sys, dev } = await fakeSys();
    const disks = await listDisks({ sysRoot: sys, devRoot: dev });
    expect(disks.map((d) => d.name)).toEqual(['sda', 'vda']);
    expect(disks[0]).toMatchObject({
      path: path.join(dev, 'sda'),
      size: 2048 * 512,
      rotational: false,
      serial: 'SER-1234',
      wwn: 'naa.5000c500a1b2c3d4',
      model: 'QEMU HARDDISK',
      vendor: 'ATA',
      by_path: 'pci-0000:00:1f.2-ata-3',
    });
    expect(disks[1]).toMatchObject({ size: 20 * GiB, rotational: true, serial: 'disk-a', by_path: 'pci-0000:00:04.0' });
    expect((await listDisks({ sysRoot: sys, devRoot: dev, all: true })).map((d) => d.name)).toEqual([
      'loop0',
      'sda',
      'vda',
    ]);
  });

  it('derives by-path names as udev spells them', () => {
    expect(byPathFromSysfs('/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0', 'nvme0n1')).toBe(
      'pci-0000:3d:00.0-nvme-1',
    );
    expect(byPathFromSysfs('/sys/devices/pci0000:00/0000:00:05.0/virtio3/host0/target0:0:1/0:0:1:0', 'sdb')).toBe(
      'pci-0000:00:05.0-scsi-0:0:1:0',
    );
    expect(byPathFromSysfs('/sys/devices/virtual/block/loop0', 'loop0')).toBeUndefined();
    expect(vpdSerial(Buffer.from([0, 0x83, 0, 1, 0x41]))).toBeUndefined();
  });
});
