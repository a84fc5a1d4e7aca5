import { execa } from 'execa';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { bootDisks, grubConfig, grubModules } from '../../actions/bootloader.js';
import { fstabFor } from '../../actions/fstab.js';
import { checkVolumeGroupsFit } from '../../actions/lvm.js';
import { fetchJob, jobUrlFromCmdline } from '../../src/agent/find-job.js';
import { localiseJobFiles } from '../../src/agent/job-files.js';
import { resolverFromDhcp } from '../../src/agent/resolver.js';
import { jobDeployInput, resolveJobPath } from '../../src/agent/job-request.js';
import { assignIdentifiers } from '../../src/disk/identifiers.js';
import { alignmentPadding, newcArchive } from '../../src/rootfs/cpio.js';
import { creationOrder, lvcreateArgs, mdadmCreateArgs, raidCapacity } from '../../src/disk/storage-commands.js';
import { JobSchema } from '../../src/objects/job.js';
import { LayoutSchema, type LayoutInput } from '../../src/objects/layout.js';
import { layoutVolumes, volumeDevicePath, volumeDisks } from '../../src/objects/volumes.js';
import { bareon, REPO } from '../helpers/cli.js';

const GiB = 2 ** 30;
const RAID_LVM = path.join(REPO, 'test/fixtures/layouts/raid1-lvm.yaml');
const raidLayout = async () => assignIdentifiers(LayoutSchema.parse(parseYaml(await readFile(RAID_LVM, 'utf8'))));
const issues = (input: unknown) => {
  const r = LayoutSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};
const disk = (id: string, parts: object[]) => ({ id, partitions: parts });

describe('md RAID and LVM in the layout', () => {
  it('lists every place a filesystem lives, with devices, disks, fstab and GRUB modules', async () => {
    const layout = await raidLayout();
    const vols = layoutVolumes(layout);
    expect(vols.filter((v) => v.mount).map((v) => `${v.kind} ${v.mount}`)).toEqual([
      'partition /boot/efi',
      'partition /data',
      'lv /',
      'lv /var',
    ]);
    const root = vols.find((v) => v.mount === '/')!;
    expect(volumeDevicePath(root)).toBe('/dev/mapper/vg0-root');
    expect(volumeDisks(layout, root)).toEqual([0, 1]);
    const fstab = fstabFor(layout)
      .split('\n')
      .filter((l) => l.startsWith('UUID='));
    expect(fstab.map((l) => l.split(/\s+/).slice(1, 3).join(' '))).toEqual([
      '/ ext4',
      '/data ext4',
      '/var xfs',
      '/boot/efi vfat',
    ]);
    expect(grubModules(layout)).toEqual(['part_gpt', 'mdraid1x', 'lvm', 'ext2']);
    expect(bootDisks(layout).map((d) => d.id)).toEqual(['a', 'b']);
    const cfg = grubConfig({ layout, bootloader: layout.bootloader!, kernel: 'vmlinuz-6.1.0-1-amd64', title: 'x' });
    expect(cfg).toContain('insmod mdraid1x\ninsmod lvm\n');
    expect(cfg).toContain(`root=UUID=${root.fs!.uuid}`);
  });

  it('refuses broken references with the field and the fix', () => {
    const members = [
      disk('a', [
        { id: 'a1', type: 'raid', size: '1GiB' },
        { id: 'a2', type: 'lvm', size: '1GiB' },
      ]),
      disk('b', [{ id: 'b1', type: 'raid', size: '1GiB', fs: { type: 'ext4' } }]),
    ];
    expect(issues({ disks: members, raids: [{ id: 'md0', level: 5, devices: ['a1', 'a2'] }] })).toEqual([
      'raids.0.devices.1: "a2" is a partition of type lvm; expected a partition of type raid',
      'raids.0.devices: RAID 5 needs at least three devices, md0 has 2',
      'disks.0.partitions.1.id: partition "a2" (type lvm) is in no volume group',
      'disks.1.partitions.0.fs: a partition of type raid holds an md array member; put the filesystem on the raid',
      'disks.1.partitions.0.id: partition "b1" (type raid) is in no raid',
      'raids.0: raid md0 has no filesystem (fs:) and is in no volume group',
    ]);
    const twoRemaining: LayoutInput = {
      disks: [disk('a', [{ id: 'p', type: 'lvm', size: 'remaining' }])],
      volume_groups: [
        {
          id: 'vg',
          devices: ['p', 'nope'],
          volumes: [
            { name: 'x', size: 'remaining' },
            { name: 'x', size: 'remaining' },
          ],
        },
      ],
    };
    expect(issues(twoRemaining)).toEqual([
      'volume_groups.0.devices.1: "nope" is not an id in this layout; expected a partition of type lvm or a raid',
      'volume_groups.0.volumes.1.size: only one volume per group may use "remaining" (volumes 0 and 1 both do)',
      'volume_groups.0.volumes.1.name: duplicate volume name "x" in vg',
    ]);
  });

  it('turns arrays and volumes into mdadm and lvcreate command lines', async () => {
    const layout = await raidLayout();
    expect(mdadmCreateArgs(layout.raids[0], ['/dev/vdb3', '/dev/vdc3'])).toEqual([
      'mdadm',
      '--create',
      '/dev/md/md0',
      '--run',
      '--force',
      '--level=1',
      '--raid-devices=2',
      '--metadata=1.2',
      '--name=md0',
      '--homehost=any',
      '--bitmap=internal',
      '/dev/vdb3',
      '/dev/vdc3',
    ]);
    const vg = {
      id: 'vg0',
      devices: ['md0'],
      volumes: LayoutSchema.shape.volume_groups.parse([
        {
          id: 'vg0',
          devices: ['md0'],
          volumes: [
            { name: 'rest', size: 'remaining' },
            { name: 'half', size: '50%' },
            { name: 'root', size: '2GiB' },
          ],
        },
      ])[0].volumes,
    };
    expect(creationOrder(vg).map((v) => v.name)).toEqual(['half', 'root', 'rest']);
    expect(creationOrder(vg).map((v) => lvcreateArgs(vg, v).slice(-3).join(' '))).toEqual([
      '-l 50%VG vg0',
      `-L ${2 * 2 ** 30}b vg0`,
      '-l 100%FREE vg0',
    ]);
    expect([
      raidCapacity(0, [4, 6]),
      raidCapacity(1, [4, 6]),
      raidCapacity(5, [4, 4, 4]),
      raidCapacity(10, [4, 4, 4, 4]),
    ]).toEqual([10, 4, 8, 8]);
  });

  it('volume groups whose volumes cannot fit on the disks found are refused before writing', async () => {
    const layout = await raidLayout();
    const objects = (size: number) =>
      ({
        artifacts: [],
        layout,
        layoutFile: 'raid1-lvm.yaml',
        disks: layout.disks.map((d) => ({ id: d.id, size })),
      }) as never;
    expect(() => checkVolumeGroupsFit(objects(8 * GiB))).not.toThrow();
    layout.volume_groups[0].volumes[0].size = { kind: 'bytes', bytes: 3 * GiB };
    expect(() => checkVolumeGroupsFit(objects(8 * GiB))).toThrow(
      /volume_groups\[0\]\.volumes: the volumes of vg0 need 3072 MiB, and its devices give about 30\d\d MiB/,
    );
  });

  it('a kernel without md refuses before anything is written', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-raid-'));
    const layout = (await readFile(RAID_LVM, 'utf8'))
      .replace('match: {serial: disk-a}', `device: ${dir}/a.img`)
      .replace('match: {serial: disk-b}', `device: ${dir}/b.img`);
    await writeFile(path.join(dir, 'layout.yaml'), layout);
    for (const img of ['a.img', 'b.img'])
      await truncate(path.join(dir, img), 4 * 2 ** 30).catch(async () => {
        await writeFile(path.join(dir, img), '');
        await truncate(path.join(dir, img), 4 * 2 ** 30);
      });
    const tarball = path.join(dir, 'root.tar');
    await execa('tar', ['-cf', tarball, '-C', dir, 'layout.yaml']);
    const r = await bareon('deploy', [tarball, '--no-verify', '--layout', path.join(dir, 'layout.yaml')]);
    const mdMissing = !(await readFile('/proc/mdstat', 'utf8').catch(() => undefined));
    if (mdMissing) {
      expect(r.exitCode, r.all).toBe(2);
      expect(r.all).toMatch(/raids: need the kernel's md \(software RAID\) driver, and this kernel has none/);
    }
    for (const img of ['a.img', 'b.img'])
      expect((await stat(path.join(dir, img))).blocks, `${img} was written`).toBe(0);
  });
});

describe('initramfs additions', () => {
  it('an appended newc archive unpacks after the one before it, as the kernel reads a concatenated initramfs', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-cpio-'));
    const first = newcArchive([
      { name: 'etc', mode: 0o755 },
      { name: 'etc/mdadm', mode: 0o755 },
      { name: 'etc/mdadm/mdadm.conf', mode: 0o644, data: Buffer.from('old\n') },
      { name: 'odd', mode: 0o644, data: Buffer.from('x') },
    ]);
    const second = newcArchive(
      [{ name: 'etc/mdadm/mdadm.conf', mode: 0o644, data: Buffer.from('ARRAY /dev/md/md0 UUID=1\n') }],
      1700000000,
    );
    const joined = Buffer.concat([first, alignmentPadding(first.length), second]);
    expect(joined.length % 4).toBe(0);
    await writeFile(path.join(dir, 'first.cpio'), first);
    await writeFile(path.join(dir, 'second.cpio'), second);
    expect(
      (await execa('cpio', ['-it', '--quiet'], { cwd: dir, inputFile: path.join(dir, 'first.cpio') })).stdout.split(
        '\n',
      ),
    ).toEqual(['etc', 'etc/mdadm', 'etc/mdadm/mdadm.conf', 'odd']);
    await execa('sh', ['-c', 'cpio -idm --quiet < first.cpio && cpio -idmu --quiet < second.cpio'], { cwd: dir });
    expect(await readFile(path.join(dir, 'etc/mdadm/mdadm.conf'), 'utf8')).toBe('ARRAY /dev/md/md0 UUID=1\n');
    expect((await stat(path.join(dir, 'etc/mdadm/mdadm.conf'))).mtimeMs).toBe(1700000000 * 1000);
  });
});

describe('jobs for the deploy agent', () => {
  it('need a checksum unless verify: false, and become a deploy request', () => {
    expect(JobSchema.safeParse({ source: 'x.tar.zst' }).error?.issues[0].message).toMatch(
      /checksum: sha256:HEX, trust: with a signed manifest, or verify: false/,
    );
    // trust: stands in for the checksum, and the agent's own allowed signers win over the job's
    const trusted = JobSchema.parse({ source: 'm.manifest.json', trust: 'signers' });
    expect(jobDeployInput(trusted, '/run/job', 'job.yaml')).toMatchObject({
      trust: '/run/job/signers',
      trustOrigin: 'job.yaml trust',
    });
    expect(jobDeployInput(trusted, '/run/job', 'job.yaml', '/etc/bareon/allowed_signers')).toMatchObject({
      trust: '/etc/bareon/allowed_signers',
    });
    const job = JobSchema.parse({
      source: 'image.tar.zst',
      checksum: `sha256:${'a'.repeat(64)}`,
      layout: 'layout.yaml',
      keep: ['data'],
      configdrive: { meta_data: 'meta-data', user_data: 'user-data' },
      target_hints: { serial: 'disk-a' },
    });
    expect(jobDeployInput(job, '/run/job', '/run/job/job.yaml')).toMatchObject({
      source: '/run/job/image.tar.zst',
      checksum: `sha256:${'a'.repeat(64)}`,
      layout: '/run/job/layout.yaml',
      targetHints: ['serial=disk-a'],
      configDrive: { metaData: '/run/job/meta-data', userData: '/run/job/user-data' },
      keepLabels: ['data'],
      settings: { verify: true, grow: false },
      yes: true,
    });
    expect(job.when_done).toBe('poweroff');
    expect(resolveJobPath('img/disk.qcow2', 'http://10.0.2.100/jobs/one.yaml')).toBe(
      'http://10.0.2.100/jobs/img/disk.qcow2',
    );
    expect(resolveJobPath('/srv/disk.qcow2', '/run/job')).toBe('/srv/disk.qcow2');
    expect(jobUrlFromCmdline('BOOT_IMAGE=/vmlinuz ro bareon.job=http://10.0.2.100/job.yaml quiet')).toBe(
      'http://10.0.2.100/job.yaml',
    );
    expect(jobUrlFromCmdline('ro quiet')).toBeUndefined();
  });
});

describe('jobs fetched over HTTP (bareon.job=)', () => {
  it('wait for the network, then fetch the job; its layout and config drive files are downloaded, its source stays a URL', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-job-http-'));
    const files: Record<string, string> = {
      '/jobs/job.yaml': 'source: img/root.tar.zst\nverify: false\nlayout: layout.yaml\nconfigdrive: {meta_data: md}\n',
      '/jobs/layout.yaml': 'disks: []\n',
      '/jobs/md': 'instance-id: x\n',
    };
    const server = http.createServer((req, res) =>
      files[req.url!] ? res.end(files[req.url!]) : res.writeHead(404).end(),
    );
    // the port is taken now and served only later: the first attempts are refused, as before DHCP
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
    server.close();
    const waits: string[] = [];
    const base = `http://127.0.0.1:${port}/jobs/job.yaml`;
    const later = new Promise<void>((resolve) => setTimeout(() => server.listen(port, '127.0.0.1', resolve), 3000));
    const text = await fetchJob(base, new AbortController().signal, 20_000, (why) => waits.push(why));
    await later;
    try {
      expect(waits[0]).toMatch(/ECONNREFUSED; waiting for the network/);
      const job = JobSchema.parse(parseYaml(text));
      const local = await localiseJobFiles(job, base, dir, new AbortController().signal);
      expect(jobDeployInput(local, base, base)).toMatchObject({
        source: `http://127.0.0.1:${port}/jobs/img/root.tar.zst`,
        settings: { verify: false },
        layout: path.join(dir, 'layout.yaml'),
        configDrive: { metaData: path.join(dir, 'meta-data') },
        yes: true,
      });
      expect(await readFile(path.join(dir, 'meta-data'), 'utf8')).toBe('instance-id: x\n');
      await expect(
        fetchJob(`http://127.0.0.1:${port}/jobs/none.yaml`, new AbortController().signal, 1000),
      ).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
  });

  it('write /etc/resolv.conf from the DHCP lease when it names no server, and leave one that does alone', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-resolv-'));
    await mkdir(path.join(dir, 'leases'));
    await writeFile(path.join(dir, 'leases', '2'), 'ADDRESS=10.0.2.15\nDNS=10.0.2.3 10.0.2.4\n');
    const conf = path.join(dir, 'resolv.conf');
    await symlink('../run/systemd/resolve/stub-resolv.conf', conf);
    expect(await resolverFromDhcp(conf, path.join(dir, 'leases'))).toEqual(['10.0.2.3', '10.0.2.4']);
    expect(await readFile(conf, 'utf8')).toMatch(/^nameserver 10\.0\.2\.3\nnameserver 10\.0\.2\.4\n$/m);
    expect(await resolverFromDhcp(conf, path.join(dir, 'leases'))).toEqual([]);
  });
});
