import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Manifest } from '../../src/objects/index.js';
import { bareon } from '../helpers/cli.js';
import { bareonContainers } from '../helpers/docker.js';
import { TEST_BASE_IMAGE } from '../helpers/images.js';

/** Copies one partition out of a raw image for checkers that take no offset. */
async function partitionFile(raw: string, offset: number, size: number, dir: string, name: string): Promise<string> {
  const file = path.join(dir, name);
  await execa('dd', [
    `if=${raw}`,
    `of=${file}`,
    'bs=1M',
    `skip=${offset / 2 ** 20}`,
    `count=${size / 2 ** 20}`,
    'conv=sparse',
    'status=none',
  ]);
  return file;
}

describe('a raw image with every filesystem type on an msdos table with logical partitions', () => {
  it('makes ext2, swap, btrfs, xfs and ext4 that their own checkers accept, each with its subtree', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-fs-'));
    const layout = {
      seed: 'filesystems-test',
      disks: [
        {
          id: 'data',
          table: 'msdos',
          partitions: [
            { type: 'linux', size: '64MiB', fs: { type: 'ext2', label: 'boot' }, mount: '/boot' },
            { type: 'swap', size: '32MiB', fs: { type: 'swap', label: 'swap' } },
            { type: 'linux', size: '160MiB', fs: { type: 'btrfs', label: 'srv' }, mount: '/srv' },
            { type: 'linux', size: '320MiB', fs: { type: 'xfs', label: 'data' }, mount: '/data' },
            { type: 'linux', size: 'remaining', fs: { type: 'ext4', label: 'root' }, mount: '/' },
          ],
        },
      ],
    };
    await writeFile(
      path.join(dir, 'p.yaml'),
      stringify({
        name: 'allfs',
        builder: 'image',
        base: { image: TEST_BASE_IMAGE },
        files: [
          { path: '/srv/www/index.html', content: 'on btrfs\n' },
          { path: '/boot/note', content: 'on ext2\n' },
        ],
        outputs: ['raw'],
        layout,
      }),
    );
    const r = await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out')]);
    expect(r.exitCode, String(r.all).slice(-3000)).toBe(0);

    const raw = path.join(dir, 'out/allfs.raw');
    await execa('sfdisk', ['--verify', raw]);
    const dump = (await execa('sfdisk', ['--dump', raw])).stdout;
    expect(dump).toMatch(/allfs\.raw4 : .*type=5/);
    const manifest: Manifest = JSON.parse(await readFile(path.join(dir, 'out/allfs.manifest.json'), 'utf8'));
    const parts = manifest.artifacts[0].partitions!;
    expect(parts.map((p) => p.number)).toEqual([1, 2, 3, 5, 6]);
    const by = (label: string) => parts.find((p) => p.fs?.label === label)!;

    await execa('e2fsck', ['-fn', `${raw}?offset=${by('boot').offset}`]);
    expect((await execa('debugfs', ['-R', 'cat /note', `${raw}?offset=${by('boot').offset}`])).stdout).toBe('on ext2');
    await execa('e2fsck', ['-fn', `${raw}?offset=${by('root').offset}`]);
    const rootLs = (await execa('debugfs', ['-R', 'ls -l /srv', `${raw}?offset=${by('root').offset}`])).stdout;
    expect(rootLs).not.toContain('www'); // /srv's content lives on its own filesystem
    const fstab = (await execa('debugfs', ['-R', 'cat /etc/fstab', `${raw}?offset=${by('root').offset}`])).stdout;
    for (const label of ['boot', 'srv', 'data', 'root', 'swap']) expect(fstab).toContain(`UUID=${by(label).fs!.uuid}`);

    const btrfs = await partitionFile(raw, by('srv').offset, by('srv').size, dir, 'srv.img');
    await execa('btrfs', ['check', '--readonly', btrfs]);
    expect((await execa('btrfs', ['filesystem', 'show', btrfs])).stdout).toContain(by('srv').fs!.uuid!);
    const xfs = await partitionFile(raw, by('data').offset, by('data').size, dir, 'data.img');
    await execa('xfs_repair', ['-n', xfs]);
    const swap = await partitionFile(raw, by('swap').offset, by('swap').size, dir, 'swap.img');
    expect((await execa('blkid', ['-p', '-o', 'export', swap])).stdout).toContain('TYPE=swap');
    expect(await bareonContainers()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });
});
