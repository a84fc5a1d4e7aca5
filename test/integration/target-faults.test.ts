import { execa } from 'execa';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { deploy, leftovers, sha256File, tarZst } from '../helpers/deploy.js';
import { zstdHeadFrameCompressor } from '../../src/stream/zstd-head-frame.js';

/**
 * Targets that must be refused, or fail cleanly: in use through a sibling loop device, the source
 * itself, a path in /dev that is no device, a full filesystem, a read-only device.
 */
const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');
const MiB = 2 ** 20;
let dir: string;
let raw: string;
const undo: (() => Promise<unknown>)[] = [];

const losetup = async (...args: string[]) => (await execa('losetup', ['--find', '--show', ...args])).stdout.trim();
const detach = (dev: string) => () => execa('losetup', ['--detach', dev], { reject: false });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'faults-'));
  // a small disk: a GPT with one ext4 partition at 1 MiB
  raw = path.join(dir, 'disk.raw');
  await execa('truncate', ['-s', '64M', raw]);
  await execa('sgdisk', ['-o', '-n', '1:2048:0', '-t', '1:8300', raw]);
  await execa('mkfs.ext4', ['-q', '-F', '-E', `offset=${MiB}`, raw, `${63 * 1024}k`]);
});
afterEach(async () => {
  while (undo.length) await undo.pop()!();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('targets in use or unfit', () => {
  it('refuses a loop device whose sibling over the same file has a partition mounted, naming the mount', async () => {
    const file = path.join(dir, 'sibling.img');
    await execa('cp', [raw, file]);
    const whole = await losetup(file);
    undo.push(detach(whole));
    const part = await losetup('--offset', String(MiB), '--sizelimit', String(63 * MiB), file);
    undo.push(detach(part));
    const mnt = path.join(dir, 'sibling-mnt');
    await mkdir(mnt);
    await execa('mount', [part, mnt]);
    undo.push(() => execa('umount', [mnt], { reject: false }));
    await writeFile(path.join(mnt, 'precious'), 'data\n');
    await execa('sync');
    const before = await sha256File(file);

    const r = await deploy([raw, whole, '--yes', '--checksum', `sha256:${await sha256File(raw)}`]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`target ${whole} is in use`);
    expect(r.stderr).toContain(`${part} (a loop device over ${file} at offset ${MiB}) is mounted on ${mnt}`);
    await execa('sync');
    expect(await sha256File(file)).toBe(before);
  });

  it('refuses an image file mounted through a loop device that names it by another path (a hardlink)', async () => {
    const file = path.join(dir, 'linked.img');
    await execa('cp', [raw, file]);
    const other = path.join(dir, 'linked-other-name.img');
    await execa('ln', [file, other]);
    const part = await losetup('--offset', String(MiB), '--sizelimit', String(63 * MiB), other);
    undo.push(detach(part));
    const mnt = path.join(dir, 'linked-mnt');
    await mkdir(mnt);
    await execa('mount', [part, mnt]);
    undo.push(() => execa('umount', [mnt], { reject: false }));
    const r = await deploy([raw, file, '--checksum', `sha256:${await sha256File(raw)}`]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${part} (a loop device over ${other} at offset ${MiB}) is mounted on ${mnt}`);
  });

  it('refuses to write a file onto itself, by any path', async () => {
    const file = path.join(dir, 'self.raw');
    await execa('cp', [raw, file]);
    const before = await sha256File(file);
    const other = path.join(dir, 'self-link.raw');
    await execa('ln', ['-sf', file, other]);
    const r = await deploy([file, other, '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`target ${other} is the source ${file}: writing it would destroy the image being read`);
    expect(await sha256File(file)).toBe(before);
  });

  it('refuses a loop device over the source file', async () => {
    const file = path.join(dir, 'looped.raw');
    await execa('cp', [raw, file]);
    const loop = await losetup(file);
    undo.push(detach(loop));
    const r = await deploy([file, loop, '--yes', '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/is the source .*looped\.raw \(a loop device over it\)/);
  });

  it('refuses a /dev path that is no block device instead of making a file there', async () => {
    const r = await deploy([raw, '/dev/sdzz', '--yes', '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('target /dev/sdzz: no such device');
    await expect(stat('/dev/sdzz')).rejects.toThrow(/ENOENT/);
  });

  it('names the image, not --size, when an image is larger than the device', async () => {
    const small = path.join(dir, 'small-dev.img');
    await execa('truncate', ['-s', '32M', small]);
    const loop = await losetup(small);
    undo.push(detach(loop));
    const r = await deploy([raw, loop, '--yes', '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`the image's virtual size (64.0 MiB) is larger than ${loop} (32.0 MiB)`);
  });
});

describe('targets that fail while written', () => {
  it('a full filesystem under an image file fails with the write error and leaves no partition table', async () => {
    const fsImage = path.join(dir, 'tiny-fs.img');
    await execa('truncate', ['-s', '48M', fsImage]);
    await execa('mkfs.ext4', ['-q', '-F', fsImage]);
    const mnt = path.join(dir, 'tiny-mnt');
    await mkdir(mnt);
    await execa('mount', ['-o', 'loop', fsImage, mnt]);
    undo.push(() =>
      execa('sh', ['-c', `umount ${mnt}; losetup -j ${fsImage} -O NAME -n | xargs -r -n1 losetup -d`], {
        reject: false,
      }),
    );
    const full = path.join(dir, 'full.raw');
    await execa('truncate', ['-s', '64M', full]);
    await execa('dd', ['if=/dev/urandom', `of=${full}`, 'bs=1M', 'count=60', 'seek=2', 'conv=notrunc', 'status=none']);
    await execa('sgdisk', ['-o', '-n', '1:2048:0', full]);
    await execa('zstd', ['-q', '-f', full, '-o', `${full}.zst`]);
    await pipeline(
      createReadStream(full),
      zstdHeadFrameCompressor({ headBytes: MiB, totalBytes: 64 * MiB }),
      createWriteStream(`${full}.hf.zst`),
    );
    // a raw image through DiskWriter, and raw.zst of one frame (zstd into dd) and with a head frame (zstd alone)
    for (const source of [full, `${full}.zst`, `${full}.hf.zst`]) {
      const target = path.join(mnt, 'target.img');
      const r = await deploy([source, target, '--no-verify']);
      expect(r.exitCode, source).toBe(1);
      expect(r.stderr, source).toMatch(/ENOSPC|No space left on device/);
      expect(r.stderr, source).not.toMatch(/corrupt|checksum/);
      const head = await readFile(target).then(
        (b) => b.subarray(0, MiB),
        () => Buffer.alloc(0),
      );
      expect(head.every((b) => b === 0)).toBe(true);
      expect(await leftovers(target)).toEqual([]);
      await rm(target, { force: true });
    }
  });

  it('a read-only device is refused before anything is written', async () => {
    const file = path.join(dir, 'ro.img');
    await execa('truncate', ['-s', '128M', file]);
    const loop = await losetup('--read-only', file);
    undo.push(detach(loop));
    const tarball = path.join(dir, 'ro.tar.zst');
    await tarZst(tarball, [['etc/hostname', 'ro\n']]);
    const r = await deploy([tarball, loop, '--layout', PLAIN, '--yes', '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`target ${loop} is read-only`);
  });
});
