import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';
import { deploy, leftovers, pathWithout, sha256File } from '../helpers/deploy.js';

const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');
const MiB = 2 ** 20;
let dir: string;
let meta: string;
let user: string;

/** sfdisk's view of an image's table. */
async function table(
  file: string,
): Promise<{ label: string; partitions: { start: number; size: number; type: string; name?: string }[] }> {
  return JSON.parse((await execa('sfdisk', ['--json', file])).stdout).partitiontable;
}

/** The files of the vfat filesystem at `offset` of `file`, read with mtools (no mount). */
async function vfatFiles(file: string, offset: number): Promise<string> {
  return (await execa('mdir', ['-b', '-i', `${file}@@${offset}`, '::/'], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-configdrive-test-'));
  meta = path.join(dir, 'meta-data');
  user = path.join(dir, 'user-data');
  await writeFile(meta, 'instance-id: node-7\nlocal-hostname: node-seven\n');
  await writeFile(user, '#cloud-config\nruncmd:\n  - echo marker\n');
  // a tiny rootfs tarball and a small GPT disk with one ext4 partition
  await execa('sh', [
    '-c',
    `mkdir -p ${dir}/root/etc && echo hi > ${dir}/root/etc/hello && tar -C ${dir}/root -cf - . | zstd -q -o ${dir}/tiny.tar.zst`,
  ]);
  await execa('truncate', ['-s', '96M', path.join(dir, 'small.raw')]);
  await execa('sgdisk', ['-o', '-n', '1:2048:0', path.join(dir, 'small.raw')]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('configdrive', () => {
  it('is reserved in the layout during plan: partitioning creates it; --skip configdrive does not', async () => {
    const target = path.join(dir, 'reserved.img');
    const r = await deploy([
      path.join(dir, 'tiny.tar.zst'),
      target,
      '--layout',
      PLAIN,
      '--size',
      '512MiB',
      '--no-verify',
      '--user-data',
      user,
      '--meta-data',
      meta,
    ]);
    expect(r.exitCode, String(r.all)).toBe(0);
    const t = await table(target);
    const last = t.partitions.at(-1)!;
    expect(t.partitions).toHaveLength(2);
    expect(last.size * 512).toBe(64 * MiB);
    expect(last.name).toBe('cidata');
    expect((last.start + last.size) * 512).toBeLessThanOrEqual(512 * MiB - 33 * 512);
    const files = await vfatFiles(target, last.start * 512);
    expect(files).toMatch(/meta-data/);
    expect(files).toMatch(/user-data/);
    const got = await execa('mtype', ['-i', `${target}@@${last.start * 512}`, '::/meta-data'], {
      env: { MTOOLS_SKIP_CHECK: '1' },
    });
    expect(got.stdout).toContain('local-hostname: node-seven');
    expect(
      (
        await execa('blkid', ['-p', '-O', String(last.start * 512), '-o', 'value', '-s', 'LABEL', target])
      ).stdout.trim(),
    ).toBe('CIDATA');
    expect(await leftovers(target)).toEqual([]);

    const skipped = path.join(dir, 'skipped.img');
    const s = await deploy([
      path.join(dir, 'tiny.tar.zst'),
      skipped,
      '--layout',
      PLAIN,
      '--size',
      '512MiB',
      '--no-verify',
      '--user-data',
      user,
      '--meta-data',
      meta,
      '--skip',
      'configdrive',
    ]);
    expect(s.exitCode, String(s.all)).toBe(0);
    expect((await table(skipped)).partitions).toHaveLength(1);
  });

  it('comes from a configdrive: section of the layout, with paths relative to it', async () => {
    const layout = path.join(dir, 'with-drive.yaml');
    await writeFile(
      layout,
      `${await readFile(PLAIN, 'utf8')}configdrive: {flavor: config-2, meta_data: meta-data, user_data: user-data}\n`,
    );
    const target = path.join(dir, 'section.img');
    const r = await deploy([
      path.join(dir, 'tiny.tar.zst'),
      target,
      '--layout',
      layout,
      '--size',
      '512MiB',
      '--no-verify',
      '--dry-run',
    ]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.all)).toMatch(/config drive config-2 \(vfat\) from .*with-drive\.yaml: configdrive/);
    const w = await deploy([
      path.join(dir, 'tiny.tar.zst'),
      target,
      '--layout',
      layout,
      '--size',
      '512MiB',
      '--no-verify',
    ]);
    expect(w.exitCode, String(w.all)).toBe(0);
    const last = (await table(target)).partitions.at(-1)!;
    expect(last.name).toBe('config-2');
    expect(await vfatFiles(target, last.start * 512)).toMatch(/openstack/);
  });

  it('added after the fact by `bareon run configdrive` (config-2, iso9660), and reused on a second run', async () => {
    const target = path.join(dir, 'alone.img');
    const r = await deploy([path.join(dir, 'small.raw'), target, '--size', '256MiB', '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    const args = [
      'configdrive',
      '--target',
      target,
      '--meta-data',
      meta,
      '--user-data',
      user,
      '--config-drive-flavor',
      'config-2',
      '--config-drive-fs',
      'iso9660',
    ];
    const first = await bareon('bareon', ['run', ...args], { stdin: 'ignore' });
    expect(first.exitCode, String(first.all)).toBe(0);
    const t = await table(target);
    expect(t.partitions).toHaveLength(2);
    const drive = t.partitions[1];
    expect(drive.size * 512).toBe(64 * MiB);
    expect((await execa('sgdisk', ['-v', target])).stdout).toContain('No problems found');
    // read the ISO back out of the partition
    const iso = path.join(dir, 'drive.iso');
    await execa('dd', [
      `if=${target}`,
      `of=${iso}`,
      'bs=1M',
      `skip=${drive.start * 512}`,
      'iflag=skip_bytes',
      `count=${drive.size * 512}`,
      'iflag=count_bytes',
      'status=none',
    ]);
    expect((await execa('blkid', ['-o', 'value', '-s', 'LABEL', iso])).stdout.trim()).toBe('config-2');
    const out = path.join(dir, 'meta_data.json');
    await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/openstack/latest/meta_data.json', out]);
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ uuid: 'node-7', hostname: 'node-seven' });

    const again = await bareon('bareon', ['run', ...args], { stdin: 'ignore' });
    expect(again.exitCode, String(again.all)).toBe(0);
    expect(String(again.all)).toMatch(/\(reused\)/);
    expect((await table(target)).partitions).toHaveLength(2);
  });

  it('fails in validation, before any write, on too much user-data, a full msdos table or a missing meta-data file', async () => {
    const big = path.join(dir, 'big-user-data');
    await execa('truncate', ['-s', '65M', big]);
    const t1 = path.join(dir, 'big.img');
    const r1 = await deploy([
      path.join(dir, 'small.raw'),
      t1,
      '--size',
      '256MiB',
      '--no-verify',
      '--user-data',
      big,
      '--meta-data',
      meta,
    ]);
    expect(r1.exitCode).toBe(2);
    expect(String(r1.all)).toMatch(/--user-data .*big-user-data: 65\.0 MiB is more than a config drive holds/);
    await expect(stat(t1)).rejects.toThrow();

    const full = path.join(dir, 'full-msdos.raw');
    await execa('truncate', ['-s', '64M', full]);
    await execa('sfdisk', ['-q', full], { input: 'label: dos\nsize=8MiB\nsize=8MiB\nsize=8MiB\nsize=8MiB\n' });
    const t2 = path.join(dir, 'full.img');
    await execa('truncate', ['-s', '256M', t2]);
    const before = await sha256File(t2);
    const r2 = await deploy([full, t2, '--no-verify', '--meta-data', meta]);
    expect(r2.exitCode).toBe(2);
    expect(String(r2.all)).toMatch(/no free primary partition for a config drive/);
    expect(await sha256File(t2)).toBe(before);

    const r3 = await deploy([
      path.join(dir, 'small.raw'),
      path.join(dir, 'nometa.img'),
      '--size',
      '256MiB',
      '--no-verify',
      '--meta-data',
      path.join(dir, 'absent'),
    ]);
    expect(r3.exitCode).toBe(2);
    expect(String(r3.all)).toMatch(/--meta-data .*absent: no such file/);
    await expect(stat(path.join(dir, 'nometa.img'))).rejects.toThrow();

    // an iso9660 drive where xorriso is missing: refused before the image is written, not after
    const noXorriso = await pathWithout('path-without-xorriso', (name) => name === 'xorriso');
    const t4 = path.join(dir, 'noxorriso.img');
    const r4 = await deploy(
      [
        path.join(dir, 'small.raw'),
        t4,
        '--size',
        '256MiB',
        '--no-verify',
        '--meta-data',
        meta,
        '--config-drive-fs',
        'iso9660',
      ],
      { env: { PATH: noXorriso } },
    );
    expect(r4.exitCode, String(r4.all)).toBe(2);
    expect(String(r4.all)).toMatch(/configdrive: the iso9660 config drive needs xorriso, which is not installed here/);
    expect(String(r4.all)).toMatch(/apt-get install xorriso/);
    await expect(stat(t4)).rejects.toThrow();
  });
});
