import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, truncate } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, leftovers, sha256File } from '../helpers/deploy.js';

const MiB = 2 ** 20;
let dir: string;
let server: http.Server;
/** http://127.0.0.1:PORT: /good/F serves F of the test dir as it is, /cut/F its first half under a full Content-Length. */
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-qcow2-'));
  server = http.createServer(async (req, res) => {
    const [, mode, name] = req.url!.split('/');
    const file = path.join(dir, name);
    const size = (await stat(file)).size;
    res.writeHead(200, { 'content-length': size });
    if (mode === 'good') return void createReadStream(file, { highWaterMark: 40_000 }).pipe(res); // chunks that end mid-cluster
    res.write((await readFile(file)).subarray(0, size / 2), () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A qcow2 made by qemu-img create, then written by qemu-io commands in their order (not the disk's). */
async function qcow2(name: string, size: string, createOpts: string, io: string[]): Promise<string> {
  const file = path.join(dir, `${name}.qcow2`);
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', ...(createOpts ? ['-o', createOpts] : []), file, size]);
  if (io.length) await execa('qemu-io', [...io.flatMap((c) => ['-c', c]), file]);
  return file;
}

/** What qemu-img makes of the image: the reference the deploy must equal. */
async function reference(image: string, tag: string): Promise<string> {
  const out = path.join(dir, `${tag}.ref`);
  await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', image, out]);
  return out;
}

/** A file of `bytes` filled with 0xff: a disk that holds old data, where zeros must be written. */
async function oldDisk(file: string, bytes: number): Promise<string> {
  const fh = await open(file, 'w');
  const block = Buffer.alloc(MiB, 0xff);
  for (let at = 0; at < bytes; at += MiB) await fh.write(block, 0, Math.min(MiB, bytes - at), at);
  await fh.close();
  return file;
}

async function expectSameExtent(ref: string, target: string): Promise<void> {
  const n = (await stat(ref)).size;
  const r = await execa('cmp', ['-n', String(n), ref, target], { reject: false });
  expect(r.exitCode, `${target} differs from qemu-img's conversion: ${r.stdout}`).toBe(0);
}

/**
 * Deploys `image` onto a fresh file and onto one full of old data; both must equal qemu-img's
 * conversion. `over: 'http'` serves it from this file's HTTP server instead of the local path.
 */
let deploys = 0;
async function deploysLikeQemuImg(image: string, size: number, over: 'file' | 'http' = 'file'): Promise<string> {
  const tag = `${path.basename(image)}.${over}.${++deploys}`;
  const ref = await reference(image, tag);
  const sha = await sha256File(image);
  const source = over === 'http' ? `${base}/good/${path.basename(image)}` : image;
  const fresh = path.join(dir, `${tag}.fresh`);
  const r = await deploy([source, fresh, '--size', String(size), '--checksum', `sha256:${sha}`, '--log-format', 'json']);
  expect(r.exitCode, String(r.all)).toBe(0);
  await expectSameExtent(ref, fresh);
  const old = await oldDisk(path.join(dir, `${tag}.old`), size);
  const o = await deploy([source, old, '--checksum', `sha256:${sha}`, '--log-format', 'json']);
  expect(o.exitCode, String(o.all)).toBe(0);
  await expectSameExtent(ref, old);
  expect(await leftovers(old)).toEqual([]);
  return String(r.all) + String(o.all);
}

describe("bareon's qcow2 reader (one hashed pass over the file; qemu-img only for what it leaves)", () => {
  it('writes clusters stored out of disk order, zero clusters that keep a host offset, and the first MiB', async () => {
    const image = await qcow2('v3', '64M', '', [
      'write -P 0xaa 60M 1M', 'write -P 0xbb 30M 3M', 'write -P 0xcc 0 64k', 'write -P 0x11 512k 8k', 'write -P 0xdd 10M 128k', 'write -z 10M 64k',
    ]);
    const map = JSON.parse((await execa('qemu-img', ['map', '--output=json', image])).stdout) as { start: number; zero: boolean; offset?: number }[];
    expect(map.some((e) => e.zero && e.offset !== undefined), 'a zero cluster with a host offset').toBe(true);
    const out = await deploysLikeQemuImg(image, 64 * MiB);
    expect(out).not.toMatch(/decoded by qemu-img/);
  });

  it('reads version 2 images with 4 KiB clusters and version 3 with 2 MiB clusters and an odd size', async () => {
    await deploysLikeQemuImg(await qcow2('v2-4k', '24M', 'compat=0.10,cluster_size=4096', ['write -P 0x5a 20M 3M', 'write -P 0xa5 4095 2']), 24 * MiB);
    const odd = 33 * MiB + 512;
    await deploysLikeQemuImg(await qcow2('v3-2m', String(odd), 'cluster_size=2M', ['write -P 0x77 32M 1M', 'write -P 0x78 0 512']), odd);
  });

  it('reads past the page cache where the filesystem allows (a large image, hashed on a worker thread; 512-byte clusters), and through it from squashfs', async () => {
    const large = await qcow2('large', '96M', '', ['write -P 0x3c 0 80M', 'write -P 0x3d 90M 1M']);
    expect((await stat(large)).size, 'large enough for the worker thread').toBeGreaterThan(64 * MiB);
    expect(await deploysLikeQemuImg(large, 96 * MiB)).toMatch(/read \S+large\.qcow2 past the page cache \(O_DIRECT\)/);
    const small = await qcow2('c512', '3M', 'cluster_size=512', ['write -P 0x61 1M 1537', 'write -P 0x62 2M 512']);
    expect((await stat(small)).size % 4096, 'a file that ends mid-block').not.toBe(0);
    expect(await deploysLikeQemuImg(small, 3 * MiB)).toMatch(/past the page cache \(O_DIRECT\)/);
    // squashfs, as on live media, has no O_DIRECT
    const media = path.join(dir, 'media');
    await mkdir(media);
    await copyFile(large, path.join(media, 'large.qcow2'));
    const squash = path.join(dir, 'media.squashfs');
    await execa('mksquashfs', [media, squash, '-noappend', '-quiet', '-noD']);
    const mnt = await mkdtemp(path.join(tmpdir(), 'live-media-')); // outside what leftovers() counts as bareon's
    const loop = (await execa('losetup', ['--find', '--show', '--offset', '0', '--sizelimit', String((await stat(squash)).size), squash])).stdout.trim();
    try {
      await execa('mount', ['-t', 'squashfs', '-o', 'ro', loop, mnt]);
      try {
        expect(await deploysLikeQemuImg(path.join(mnt, 'large.qcow2'), 96 * MiB)).toMatch(/read \S+large\.qcow2 through the page cache \(its filesystem takes no O_DIRECT reads\)/);
      } finally {
        await execa('umount', [mnt]);
      }
    } finally {
      await execa('losetup', ['--detach', loop]);
      await rm(mnt, { recursive: true, force: true });
    }
  });

  it('leaves compressed images to qemu-img, and says so', async () => {
    const plain = await qcow2('to-compress', '16M', '', ['write -P 0x42 2M 2M', 'write -P 0x43 0 4k']);
    const compressed = path.join(dir, 'compressed.qcow2');
    await execa('qemu-img', ['convert', '-c', '-f', 'qcow2', '-O', 'qcow2', plain, compressed]);
    const out = await deploysLikeQemuImg(compressed, 16 * MiB);
    expect(out).toMatch(/qcow2 decoded by qemu-img \(bareon's reader skips it: it has compressed clusters\)/);
  });

  it('writes a qcow2 served over http as it arrives, with no file in between, when its tables come before their clusters (as qemu-img writes them)', async () => {
    const images = [
      await qcow2('http-v3', '64M', '', ['write -P 0xaa 60M 1M', 'write -P 0xbb 30M 3M', 'write -P 0xcc 0 64k', 'write -P 0xdd 10M 128k', 'write -z 10M 64k']),
      await qcow2('http-v2-4k', '24M', 'compat=0.10,cluster_size=4096', ['write -P 0x5a 20M 3M', 'write -P 0xa5 4095 2']),
    ];
    for (const image of images) {
      const out = await deploysLikeQemuImg(image, (image.includes('4k') ? 24 : 64) * MiB, 'http');
      expect(out).toMatch(/written as it arrives/);
      expect(out).not.toMatch(/spooling|into a file|decoded by qemu-img/);
    }
  });

  it('fetches a qcow2 whose active tables come after their clusters again, into a file, and writes it all the same', async () => {
    // after an internal snapshot, a write copies the L2 table it goes through to the end of the file
    const image = await qcow2('after-snapshot', '16M', '', ['write -P 0x21 0 1M', 'write -P 0x22 8M 64k']);
    await execa('qemu-img', ['snapshot', '-c', 'before', image]);
    await execa('qemu-io', ['-c', 'write -P 0x23 1M 64k', image]);
    const out = await deploysLikeQemuImg(image, 16 * MiB, 'http');
    expect(out).toMatch(/cannot be written as it arrives \(L2 table 0 maps clusters stored before it\): fetching it again, into a file/);
  });

  it('fails on a qcow2 stream cut halfway, and clears what it began to write', async () => {
    const image = await qcow2('http-cut', '64M', '', ['write -P 0x99 8M 24M']);
    const target = await oldDisk(path.join(dir, 'http-cut.target'), 64 * MiB);
    await execa('sgdisk', ['-o', '-n', '1:2048:0', target]);
    const r = await deploy([`${base}/cut/http-cut.qcow2`, target, '--checksum', `sha256:${await sha256File(image)}`]);
    expect(r.exitCode).toBe(1);
    expect(String(r.all)).toMatch(/truncated/);
    expect((await execa('sfdisk', ['--json', target], { reject: false })).exitCode, 'no partition table left').not.toBe(0);
    expect(await leftovers(target)).toEqual([]);
  });

  it('refuses a truncated qcow2 before writing anything', async () => {
    const image = await qcow2('cut', '64M', '', ['write -P 0x99 40M 8M']);
    await truncate(image, (await stat(image)).size - 4 * MiB);
    const target = await oldDisk(path.join(dir, 'cut.target'), 64 * MiB);
    const before = await sha256File(target);
    const r = await deploy([image, target, '--no-verify']);
    expect(r.exitCode).not.toBe(0);
    expect(String(r.all)).toMatch(/cut\.qcow2: the cluster for disk byte \d+ lies past the end of the file: the qcow2 is truncated/);
    expect(String(r.all)).toMatch(/nothing was written/);
    expect(await sha256File(target)).toBe(before);
  });
});
