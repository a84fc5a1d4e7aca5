import { mkdtemp, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { sgdiskArgs, sfdiskScript } from '../../actions/partitioning.js';
import { fstabFor } from '../../actions/fstab.js';
import { grubConfig } from '../../actions/bootloader.js';
import { autoDiskSize, placePartitions } from '../../src/disk/geometry.js';
import { embedGrubBios } from '../../src/disk/grub-bios.js';
import { assignIdentifiers } from '../../src/disk/identifiers.js';
import { defaultMirror } from '../../src/docker/mirror.js';
import { LayoutSchema, type LayoutInput } from '../../src/objects/layout.js';
import { SparseFileWriter } from '../../src/stream/disk-writer.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const layoutOf = (input: LayoutInput) => LayoutSchema.parse(input);
const hybrid = (): LayoutInput => ({
  disks: [
    {
      id: 'root',
      partitions: [
        { type: 'bios_grub', size: '1MiB' },
        { type: 'esp', size: '256MiB', fs: { type: 'vfat', label: 'EFI' }, mount: '/boot/efi' },
        { type: 'swap', size: '10%', fs: { type: 'swap' } },
        { type: 'linux', size: 'remaining', fs: { type: 'ext4', label: 'root', options: ['noatime'] }, mount: '/' },
      ],
    },
  ],
  bootloader: { kind: ['grub-bios', 'grub-efi'], cmdline: 'console=ttyS0,115200' },
  seed: 'test-seed',
});

describe('partition geometry', () => {
  it('aligns every partition to 1 MiB, gives the rest to remaining, and leaves room for the backup GPT', () => {
    const g = placePartitions(layoutOf(hybrid()).disks[0], 4 * GiB);
    expect(g.partitions.map((p) => [p.number, p.start / MiB, p.size / MiB])).toEqual([
      [1, 1, 1],
      [2, 2, 256],
      [3, 258, 410],
      [4, 668, 4095 - 668],
    ]);
    for (const p of g.partitions) expect(p.start % MiB).toBe(0);
  });

  it('puts partitions five and up into an extended partition on msdos, with a gap for each EBR', () => {
    const parts = Array.from({ length: 6 }, (_, i) => ({
      type: 'linux' as const,
      size: i === 5 ? 'remaining' : '100MiB',
    }));
    const g = placePartitions(layoutOf({ disks: [{ id: 'd', table: 'msdos', partitions: parts }] }).disks[0], 2 * GiB);
    expect(g.partitions.map((p) => p.number)).toEqual([1, 2, 3, 5, 6, 7]);
    expect(g.extended).toEqual({ number: 4, start: 301 * MiB, size: 2048 * MiB - 301 * MiB });
    expect(g.partitions[3].start).toBe(302 * MiB);
    const script = sfdiskScript(g, '0a0b0c0d-0000-4000-8000-000000000000');
    expect(script).toMatch(/^label: dos\nlabel-id: 0x0a0b0c0d\n/);
    expect(script).toContain(`start=${301 * 2048}, size=${(2048 - 301) * 2048}, type=5\n`);
  });

  it('sizes an auto image as the content plus 30 % plus the fixed partitions', () => {
    const disk = layoutOf({
      disks: [
        {
          id: 'r',
          partitions: [
            { type: 'bios_grub', size: '1MiB' },
            { type: 'linux', size: 'remaining', fs: { type: 'ext4' }, mount: '/' },
          ],
        },
      ],
    }).disks[0];
    expect(autoDiskSize(disk, 1000 * MiB)).toBe((1 + 1300 + 2) * MiB);
  });
});

describe('identifiers', () => {
  it('derives the same UUIDs from the same seed, and different ones per partition', () => {
    const a = assignIdentifiers(layoutOf(hybrid()));
    const b = assignIdentifiers(layoutOf(hybrid()));
    expect(a).toEqual(b);
    const uuids = a.disks[0].partitions.flatMap((p) => [p.uuid, p.fs?.uuid]).filter(Boolean);
    expect(new Set(uuids).size).toBe(uuids.length);
    expect(a.disks[0].partitions[1].fs!.uuid).toMatch(/^[0-9A-F]{4}-[0-9A-F]{4}$/);
    expect(a.disks[0].partitions[3].fs!.uuid).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});

describe('partitioning, fstab and grub.cfg from a layout', () => {
  const layout = assignIdentifiers(layoutOf(hybrid()));
  const g = placePartitions(layout.disks[0], 4 * GiB);

  it('writes GPT types, names and GUIDs, with the root type for /', () => {
    const args = sgdiskArgs(g, '11111111-1111-4111-8111-111111111111', '/work/disk.img');
    expect(args).toContain('--new=1:2048:4095');
    expect(args).toContain('--typecode=1:EF02');
    expect(args).toContain('--typecode=2:EF00');
    expect(args).toContain('--typecode=4:8304');
    expect(args).toContain(`--partition-guid=4:${layout.disks[0].partitions[3].uuid}`);
    expect(args.at(-1)).toBe('/work/disk.img');
  });

  it('mounts by UUID with a sane pass order', () => {
    const [, esp, swap, root] = layout.disks[0].partitions;
    expect(
      fstabFor(layout)
        .split('\n')
        .filter((l) => l.startsWith('UUID=')),
    ).toEqual([
      `UUID=${root.fs!.uuid}  /  ext4  noatime  0  1`,
      `UUID=${esp.fs!.uuid}  /boot/efi  vfat  umask=0077,nofail  0  2`,
      `UUID=${swap.fs!.uuid}  none  swap  sw  0  0`,
    ]);
  });

  it('boots the kernel with root by UUID and the layout’s command line', () => {
    const cfg = grubConfig({
      layout,
      bootloader: layout.bootloader!,
      kernel: 'vmlinuz-6.1.0-9-amd64',
      initrd: 'initrd.img-6.1.0-9-amd64',
      title: 'web',
    });
    const root = layout.disks[0].partitions[3].fs!.uuid;
    expect(cfg).toContain(`search --no-floppy --fs-uuid --set=root ${root}`);
    expect(cfg).toContain(`linux /boot/vmlinuz-6.1.0-9-amd64 root=UUID=${root} ro console=ttyS0,115200`);
    expect(cfg).toContain('initrd /boot/initrd.img-6.1.0-9-amd64');
  });
});

describe('GRUB BIOS embedding', () => {
  it('points boot.img at core.img, skips the drive check and sets core.img’s blocklist', () => {
    const boot = Buffer.alloc(512, 0xcc);
    const core = Buffer.alloc(700, 0xdd);
    const code = embedGrubBios(boot, core, 2048, 2048);
    expect(code.mbrCode.length).toBe(440);
    expect(code.mbrCode.readBigUInt64LE(0x5c)).toBe(2048n);
    expect([code.mbrCode[0x66], code.mbrCode[0x67]]).toEqual([0x90, 0x90]);
    expect(code.core.length).toBe(1024);
    expect(code.core.readBigUInt64LE(0x1f4)).toBe(2049n);
    expect(() => embedGrubBios(boot, Buffer.alloc(2 * 512 + 1), 1, 2)).toThrow(/needs 3 sectors but only 2/);
  });
});

describe('the sparse file writer', () => {
  it('writes the same bytes while leaving zero blocks unallocated', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-sparse-'));
    const data = Buffer.alloc(16 * MiB);
    data.fill(7, 3 * MiB, 3 * MiB + 100);
    data.fill(9, 16 * MiB - 10);
    const file = path.join(dir, 'out.img');
    const chunks = Array.from({ length: 64 }, (_, i) => data.subarray(i * 262_143, (i + 1) * 262_143));
    await pipeline(Readable.from([...chunks, data.subarray(64 * 262_143)]), new SparseFileWriter(file));
    expect((await readFile(file)).equals(data)).toBe(true);
    const st = await stat(file);
    expect(st.size).toBe(16 * MiB);
    expect(st.blocks * 512).toBeLessThan(1 * MiB);
  });
});

describe('the default bootstrap mirror', () => {
  it('is the host’s apt mirror for that distro, else the official one', async () => {
    const apt = await mkdtemp(path.join(tmpdir(), 'bareon-apt-'));
    await mkdir(path.join(apt, 'sources.list.d'));
    await writeFile(
      path.join(apt, 'sources.list.d', 'debian.sources'),
      'Types: deb\nURIs: http://mirror.local/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.local/debian-security\n',
    );
    expect(await defaultMirror('debian', apt)).toBe('http://mirror.local/debian');
    expect(await defaultMirror('ubuntu', apt)).toBe('http://archive.ubuntu.com/ubuntu');
  });
});
