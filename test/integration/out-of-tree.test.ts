import { execa } from 'execa';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';
import { leftovers, sha256File, tarZst } from '../helpers/deploy.js';
import { projectWithFixturePlugin } from '../helpers/fixture-plugin.js';

/**
 * bareon as a framework: a plugin package outside this repository, written only against bareon's
 * public subpaths and installed with npm (test/fixtures/bareon-plugin-fixture), joins the deploy
 * pipeline with an action (`--with`, a layout's `with:`, an agent job's `with:`) and deploys a format
 * bareon lacks (raw disks in bzip2) with the checks and failure behaviour of bareon's own deployers.
 */
const MiB = 2 ** 20;
const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');
let project: string;
let dir: string;

beforeAll(async () => {
  project = await projectWithFixturePlugin();
  dir = await mkdtemp(path.join(tmpdir(), 'oot-'));
});
afterAll(async () => {
  await rm(project, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

const inProject = (bin: 'bareon' | 'deploy', args: string[]) => bareon(bin, args, { cwd: project, stdin: 'ignore' });

/** A file of the ext4 filesystem at `offset` in `image`, read with debugfs (nothing mounted). */
async function fileIn(image: string, offset: number, file: string): Promise<string> {
  return (await execa('debugfs', ['-R', `cat ${file}`, `${image}?offset=${offset}`], { stderr: 'ignore' })).stdout;
}

/** A 256 MiB GPT disk with one ext4 partition at 1 MiB holding /etc, as qcow2. */
async function smallQcow2(): Promise<string> {
  const tree = path.join(dir, 'tree');
  await execa('mkdir', ['-p', path.join(tree, 'etc')]);
  await writeFile(path.join(tree, 'etc/hostname'), 'small\n');
  const raw = path.join(dir, 'small.raw');
  await execa('truncate', ['-s', '256M', raw]);
  await execa('sgdisk', ['-o', '-n', '1:2048:0', '-t', '1:8300', raw]);
  await execa('mkfs.ext4', ['-q', '-F', '-d', tree, '-E', `offset=${MiB}`, raw, `${254 * 1024}k`]);
  const qcow2 = path.join(dir, 'small.qcow2');
  await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  return qcow2;
}

describe('an out-of-tree plugin package, installed with npm', () => {
  it('is listed with its pipeline place and the objects it reads and writes', async () => {
    const r = await inProject('bareon', ['plugins', '--json']);
    expect(r.exitCode, String(r.all)).toBe(0);
    const rows = JSON.parse(String(r.stdout));
    expect(rows.find((p: { name: string }) => p.name === 'motd')).toMatchObject({
      namespace: 'bareon.actions',
      package: 'bareon-plugin-fixture',
      source: 'project',
      status: 'ok',
      pipelines: { deploy: { after: ['deploy'], before: ['bootloader'] } },
      writes: ['bareon-plugin-fixture/banner'],
    });
    expect(rows.find((p: { name: string }) => p.name === 'img-bz2')).toMatchObject({ status: 'ok' });
    expect(rows.find((p: { name: string }) => p.name === 'configdrive').writes).toEqual(['reservations']);
  });

  it('joins bareon-deploy of a qcow2 onto an image file with --with: its file is in the deployed filesystem', async () => {
    const qcow2 = await smallQcow2();
    const target = path.join(dir, 'qcow2-target.img');
    const plan = await inProject('deploy', [qcow2, target, '--no-verify', '--with', 'motd', '--dry-run']);
    expect(plan.exitCode, String(plan.all)).toBe(0);
    expect(String(plan.stdout)).toMatch(
      /1\. bareon\.actions\/deploy \(deploy pipeline\)\n[\s\S]*2\. bareon\.actions\/motd \(--with\)/,
    );
    const r = await inProject('deploy', [qcow2, target, '--no-verify', '--with', 'motd']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(await fileIn(target, MiB, '/etc/motd')).toBe(`deployed by bareon-plugin-fixture from ${qcow2}`);
    expect(await fileIn(target, MiB, '/etc/hostname')).toBe('small');
    expect(await leftovers(target)).toEqual([]);
  });

  it("joins a rootfs deploy through the layout's with:", async () => {
    const rootfs = path.join(dir, 'rootfs.tar.zst');
    await tarZst(rootfs, [['etc/hostname', 'tarball\n']]);
    const layout = path.join(dir, 'with-motd.yaml');
    await writeFile(layout, `${await (await import('node:fs/promises')).readFile(PLAIN, 'utf8')}\nwith: [motd]\n`);
    const target = path.join(dir, 'rootfs-target.img');
    const r = await inProject('deploy', [rootfs, target, '--layout', layout, '--size', '256M', '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.all)).toMatch(/motd \(with-motd\.yaml with\[0\]\)/);
    expect(await fileIn(target, MiB, '/etc/motd')).toBe(`deployed by bareon-plugin-fixture from ${rootfs}`);
  });

  it("joins an agent job through the job's with:", async () => {
    const rootfs = path.join(dir, 'job-rootfs.tar.zst');
    await tarZst(rootfs, [['etc/hostname', 'job\n']]);
    const disk = path.join(dir, 'job-disk.img');
    await execa('truncate', ['-s', '256M', disk]);
    const job = path.join(dir, 'job.json');
    const layout = {
      disks: [
        { id: 't', device: disk, partitions: [{ type: 'linux', size: 'remaining', fs: { type: 'ext4' }, mount: '/' }] },
      ],
    };
    await writeFile(
      job,
      JSON.stringify({
        source: rootfs,
        checksum: `sha256:${await sha256File(rootfs)}`,
        layout,
        with: ['motd'],
        when_done: 'none',
      }),
    );
    const r = await inProject('bareon', ['agent', '--job', job]);
    expect(String(r.stdout).trim().split('\n').at(-1), String(r.all)).toBe('bareon-job: ok');
    expect(String(r.stdout)).toMatch(/"task":"motd \(.*job\.json with\[0\]\)"/);
    expect(await fileIn(disk, MiB, '/etc/motd')).toBe(`deployed by bareon-plugin-fixture from ${rootfs}`);
  });

  it('deploys a raw disk in bzip2, a format bareon lacks, sha256-verified, through its deployer', async () => {
    const raw = path.join(dir, 'disk.raw');
    await execa('truncate', ['-s', '64M', raw]);
    await execa('sgdisk', ['-o', '-n', '1:2048:0', raw]);
    await execa('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'seek=4', 'count=8', 'conv=notrunc', 'status=none']);
    const bz2 = path.join(dir, 'disk.img.bz2');
    await execa('sh', ['-c', `bzip2 -c ${raw} > ${bz2}`]);
    const sha = await sha256File(bz2);

    const plan = await inProject('deploy', [
      bz2,
      path.join(dir, 'plan.img'),
      '--size',
      '64M',
      '--checksum',
      `sha256:${sha}`,
      '--dry-run',
    ]);
    expect(plan.exitCode, String(plan.all)).toBe(0);
    expect(String(plan.stdout)).toMatch(/bareon\.deployers\/img-bz2 \(run by bareon\.actions\/deploy\)/);
    const target = path.join(dir, 'bz2-target.img');
    const r = await inProject('deploy', [bz2, target, '--size', '64M', '--checksum', `sha256:${sha}`]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.all)).toMatch(/wrote raw\.bz2 onto .*: 67108864 bytes, sha256 verified/);
    expect(await sha256File(target)).toBe(await sha256File(raw));

    // without the plugin, bareon does not know the format
    const alone = await bareon(
      'deploy',
      [bz2, path.join(dir, 'alone.img'), '--size', '64M', '--checksum', `sha256:${sha}`],
      { cwd: dir },
    );
    expect(alone.exitCode).toBe(2);
    expect(String(alone.stderr)).toMatch(/not a format bareon-deploy knows/);
  });

  it('refuses a bzip2 disk with a flipped byte or the wrong checksum, and clears the half-written table', async () => {
    const raw = path.join(dir, 'disk.raw');
    const good = path.join(dir, 'disk.img.bz2');
    const sha = await sha256File(good);
    const flipped = path.join(dir, 'flipped.img.bz2');
    await copyFile(good, flipped);
    await execa('sh', ['-c', `printf '\\125' | dd of=${flipped} bs=1 seek=300000 conv=notrunc status=none`]);
    for (const [source, checksum] of [
      [flipped, sha],
      [good, 'f'.repeat(64)],
    ]) {
      const target = path.join(dir, 'bad-target.img');
      await copyFile(raw, target); // a disk that held a table before
      const r = await inProject('deploy', [source, target, '--checksum', `sha256:${checksum}`]);
      expect(r.exitCode, String(r.all)).toBe(1);
      expect(String(r.all)).toMatch(/cleared the partition tables of/);
      expect((await execa('sfdisk', ['--json', target], { reject: false })).exitCode, 'a table is left').not.toBe(0);
      expect(await leftovers(target)).toEqual([]);
      await rm(target);
    }
  });
});

describe('the resolved pipeline', () => {
  it('is printed by --dry-run with where each entry came from; --with an unknown action exits 2 naming the known ones', async () => {
    const rootfs = path.join(dir, 'plan.tar.zst');
    await tarZst(rootfs, [['etc/hostname', 'plan\n']]);
    const layout = path.join(REPO, 'profiles/layouts/bios-uefi-gpt.yaml');
    const target = path.join(dir, 'plan-target.img');
    const args = [rootfs, target, '--layout', layout, '--size', '2G', '--no-verify', '--dry-run'];
    const r = await bareon('deploy', args);
    expect(r.exitCode, String(r.all)).toBe(0);
    const steps = String(r.stdout).match(/^ {2}\d+\. .*$/gm);
    expect(steps).toEqual([
      '  1. bareon.actions/partitioning (deploy pipeline)',
      '  2. bareon.actions/filesystems (deploy pipeline)',
      '  3. bareon.actions/deploy (deploy pipeline)',
      '  4. bareon.actions/fstab (deploy pipeline)',
      '  5. bareon.actions/bootloader (deploy pipeline)',
    ]);
    const unknown = await bareon('deploy', [...args, '--with', 'motdd']);
    expect(unknown.exitCode).toBe(2);
    expect(String(unknown.stderr)).toMatch(/--with: no bareon\.actions plugin named "motdd"/);
    expect(String(unknown.stderr)).toMatch(
      /actions that can join the deploy pipeline: bootloader, configdrive, deploy, filesystems, fstab, initramfs, lvm, partitioning, raid/,
    );
    await expect(execa('test', ['-e', target])).rejects.toThrow();
  });
});
