import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { deploy, tarZst } from '../helpers/deploy.js';

const LAYOUT = path.join(REPO, 'test/fixtures/layouts/root-and-data.yaml');
const ROOT = 2 ** 20;
const DATA = ROOT + 256 * 2 ** 20;
let dir: string;
let target: string;

const cat = async (offset: number, file: string) =>
  (await execa('debugfs', ['-R', `cat ${file}`, `${target}?offset=${offset}`])).stdout;
const fsUuid = async (offset: number) =>
  (await execa('blkid', ['-p', '-O', String(offset), '-o', 'value', '-s', 'UUID', target])).stdout;
const table = async () => (await execa('sfdisk', ['-d', target])).stdout;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-keep-test-'));
  target = path.join(dir, 'disk.img');
  await tarZst(path.join(dir, 'one.tar.zst'), [
    ['etc/hostname', 'one\n'],
    ['etc/one', 'first deploy\n'],
  ]);
  await tarZst(path.join(dir, 'two.tar.zst'), [['etc/hostname', 'two\n']]);
  const first = await deploy([
    path.join(dir, 'one.tar.zst'),
    target,
    '--layout',
    LAYOUT,
    '--size',
    '512M',
    '--no-verify',
  ]);
  expect(first.exitCode, String(first.all)).toBe(0);
  // what a machine wrote to /data since
  await writeFile(path.join(dir, 'precious.txt'), 'keep me\n');
  await execa('debugfs', [
    '-w',
    '-R',
    `write ${path.join(dir, 'precious.txt')} precious.txt`,
    `${target}?offset=${DATA}`,
  ]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a redeploy that keeps a partition', () => {
  it('refuses, before writing anything, when the new table would move the kept partition', async () => {
    const moved = path.join(dir, 'moved.yaml');
    await writeFile(
      moved,
      (await readFile(LAYOUT, 'utf8'))
        .replace('size: 256MiB', 'size: 300MiB')
        .replace('name: data,', 'name: data, keep: true,'),
    );
    const before = await table();
    const r = await deploy([path.join(dir, 'two.tar.zst'), target, '--layout', moved, '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(2);
    expect(r.stderr).toMatch(
      /keep: the new table puts partition 2 at offset 315621376, .* but .* has it at offset 269484032, .*; nothing was written/,
    );
    expect(await table()).toBe(before);
    expect(await cat(ROOT, '/etc/hostname')).toBe('one');
  });

  it('--dry-run says which partition is kept and is not made again', async () => {
    const r = await deploy([
      path.join(dir, 'two.tar.zst'),
      target,
      '--layout',
      LAYOUT,
      '--no-verify',
      '--keep-label',
      'data',
      '--dry-run',
    ]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(r.stdout).toMatch(/2\. kept linux/);
    expect(r.stdout).toMatch(/partition 2: kept \(ext4 [0-9a-f-]{36}, not made again\)/);
  });

  it('--keep-label data leaves /data and its files as they were, and remakes the rest', async () => {
    const dataUuid = await fsUuid(DATA);
    const rootUuid = await fsUuid(ROOT);
    const r = await deploy([
      path.join(dir, 'two.tar.zst'),
      target,
      '--layout',
      LAYOUT,
      '--no-verify',
      '--keep-label',
      'data',
    ]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(await cat(DATA, '/precious.txt')).toBe('keep me');
    expect(await fsUuid(DATA)).toBe(dataUuid);
    expect(await cat(ROOT, '/etc/hostname')).toBe('two');
    expect(await fsUuid(ROOT)).not.toBe(rootUuid);
    await expect(cat(ROOT, '/etc/one')).resolves.toBe(''); // the old root is gone (debugfs prints nothing for a missing file)
    const fstab = await cat(ROOT, '/etc/fstab');
    expect(fstab).toContain(`UUID=${dataUuid}  /data  ext4`);
    await execa('e2fsck', ['-fn', `${target}?offset=${DATA}`]);
    await execa('e2fsck', ['-fn', `${target}?offset=${ROOT}`]);
  });

  it('names an unknown --keep-label', async () => {
    const r = await deploy([
      path.join(dir, 'two.tar.zst'),
      target,
      '--layout',
      LAYOUT,
      '--no-verify',
      '--keep-label',
      'nope',
    ]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--keep-label nope: no partition of');
  });
});

describe('a redeploy over an older layout', () => {
  it('removes the old signatures of partitions it does not keep, so nothing stale is found where no filesystem is made', async () => {
    const disk = path.join(dir, 'wipe.img');
    const first = await deploy([
      path.join(dir, 'one.tar.zst'),
      disk,
      '--layout',
      LAYOUT,
      '--size',
      '512M',
      '--no-verify',
    ]);
    expect(first.exitCode, String(first.all)).toBe(0);
    const probe = () =>
      execa('blkid', ['-p', '-O', String(DATA), '-o', 'value', '-s', 'TYPE', disk], { reject: false });
    expect((await probe()).stdout).toBe('ext4');
    const rawData = path.join(dir, 'raw-data.yaml');
    await writeFile(
      rawData,
      (await readFile(LAYOUT, 'utf8')).replace(
        '{type: linux, size: remaining, name: data, fs: {type: ext4, label: data}, mount: /data}',
        '{type: raw, size: remaining, name: scratch}',
      ),
    );
    const second = await deploy([path.join(dir, 'two.tar.zst'), disk, '--layout', rawData, '--no-verify']);
    expect(second.exitCode, String(second.all)).toBe(0);
    expect(String(second.all)).toContain('removed old signatures from partition(s) 1, 2 of the previous table');
    const after = await probe();
    expect(after.stdout, 'the old ext4 of /data is still there').toBe('');
  });
});
