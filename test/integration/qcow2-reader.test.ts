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

const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;

/** The big-endian u64 at `at` in `file`. */
async function u64(file: string, at: number): Promise<bigint> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(8);
    await fh.read(buf, 0, 8, at);
    return buf.readBigUInt64BE(0);
  } finally {
    await fh.close();
  }
}

/** Writes big-endian values into `file` at byte offsets: [offset, value, width in bytes]. */
async function patch(file: string, values: [number, bigint, 4 | 8][]): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    for (const [at, value, width] of values) {
      const buf = Buffer.alloc(width);
      if (width === 8) buf.writeBigUInt64BE(value);
      else buf.writeUInt32BE(Number(value));
      await fh.write(buf, 0, width, at);
    }
  } finally {
    await fh.close();
  }
}

/** A copy of `image` under a new name, patched (see patch). */
async function patchedCopy(image: string, name: string, values: [number, bigint, 4 | 8][]): Promise<string> {
  const file = path.join(dir, `${name}.qcow2`);
  await copyFile(image, file);
  await patch(file, values);
  return file;
}

/** A file of `bytes` with old data and a GPT: what must survive a deploy refused before writing. */
async function oldDiskWithTable(file: string, bytes: number): Promise<string> {
  await oldDisk(file, bytes);
  await execa('sgdisk', ['-o', '-n', '1:2048:0', file]);
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
  const r = await deploy([
    source,
    fresh,
    '--size',
    String(size),
    '--checksum',
    `sha256:${sha}`,
    '--log-format',
    'json',
  ]);
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
      'write -P 0xaa 60M 1M',
      'write -P 0xbb 30M 3M',
      'write -P 0xcc 0 64k',
      'write -P 0x11 512k 8k',
      'write -P 0xdd 10M 128k',
      'write -z 10M 64k',
    ]);
    const map = JSON.parse((await execa('qemu-img', ['map', '--output=json', image])).stdout) as {
      start: number;
      zero: boolean;
      offset?: number;
    }[];
    expect(
      map.some((e) => e.zero && e.offset !== undefined),
      'a zero cluster with a host offset',
    ).toBe(true);
    const out = await deploysLikeQemuImg(image, 64 * MiB);
    expect(out).not.toMatch(/decoded by qemu-img/);
  });

  it('reads version 2 images with 4 KiB clusters and version 3 with 2 MiB clusters and an odd size', async () => {
    await deploysLikeQemuImg(
      await qcow2('v2-4k', '24M', 'compat=0.10,cluster_size=4096', ['write -P 0x5a 20M 3M', 'write -P 0xa5 4095 2']),
      24 * MiB,
    );
    const odd = 33 * MiB + 512;
    await deploysLikeQemuImg(
      await qcow2('v3-2m', String(odd), 'cluster_size=2M', ['write -P 0x77 32M 1M', 'write -P 0x78 0 512']),
      odd,
    );
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
    const loop = (
      await execa('losetup', [
        '--find',
        '--show',
        '--offset',
        '0',
        '--sizelimit',
        String((await stat(squash)).size),
        squash,
      ])
    ).stdout.trim();
    try {
      await execa('mount', ['-t', 'squashfs', '-o', 'ro', loop, mnt]);
      try {
        expect(await deploysLikeQemuImg(path.join(mnt, 'large.qcow2'), 96 * MiB)).toMatch(
          /read \S+large\.qcow2 through the page cache \(its filesystem takes no O_DIRECT reads\)/,
        );
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
      await qcow2('http-v3', '64M', '', [
        'write -P 0xaa 60M 1M',
        'write -P 0xbb 30M 3M',
        'write -P 0xcc 0 64k',
        'write -P 0xdd 10M 128k',
        'write -z 10M 64k',
      ]),
      await qcow2('http-v2-4k', '24M', 'compat=0.10,cluster_size=4096', [
        'write -P 0x5a 20M 3M',
        'write -P 0xa5 4095 2',
      ]),
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
    // internal snapshots: their table is checked by qemu-img, which needs the file
    expect(out).toMatch(
      /cannot be written as it arrives \(qemu-img checks its internal snapshots\): fetching it again, into a file/,
    );
  });

  it('fails on a qcow2 stream cut halfway, and clears what it began to write', async () => {
    const image = await qcow2('http-cut', '64M', '', ['write -P 0x99 8M 24M']);
    const target = await oldDisk(path.join(dir, 'http-cut.target'), 64 * MiB);
    await execa('sgdisk', ['-o', '-n', '1:2048:0', target]);
    const r = await deploy([`${base}/cut/http-cut.qcow2`, target, '--checksum', `sha256:${await sha256File(image)}`]);
    expect(r.exitCode).toBe(1);
    expect(String(r.all)).toMatch(/truncated/);
    expect((await execa('sfdisk', ['--json', target], { reject: false })).exitCode, 'no partition table left').not.toBe(
      0,
    );
    expect(await leftovers(target)).toEqual([]);
  });

  it('refuses a truncated qcow2 before writing anything', async () => {
    const image = await qcow2('cut', '64M', '', ['write -P 0x99 40M 8M']);
    await truncate(image, (await stat(image)).size - 4 * MiB);
    const target = await oldDisk(path.join(dir, 'cut.target'), 64 * MiB);
    const before = await sha256File(target);
    const r = await deploy([image, target, '--no-verify']);
    expect(r.exitCode).not.toBe(0);
    expect(String(r.all)).toMatch(
      /cut\.qcow2: the cluster for disk byte \d+ lies past the end of the file \(at byte \d+; the file has \d+\): the qcow2 is truncated/,
    );
    expect(String(r.all)).toMatch(/nothing was written/);
    expect(await sha256File(target)).toBe(before);
  });

  it('maps an L2 table shared by two L1 entries and a cluster shared by two L2 entries at every place (file and http), as qemu-img does', async () => {
    // 4 KiB clusters: one L2 table maps 2 MiB; the file is over 1 MiB, as an http source must be today
    const image = await qcow2('shared', '8M', 'cluster_size=4096', [
      'write -P 0x41 0 64k',
      'write -P 0x42 1M 4k',
      'write -P 0x43 4M 1200k',
    ]);
    const l1 = Number(await u64(image, 40));
    const l2 = Number((await u64(image, l1)) & OFFSET_MASK);
    // disk bytes 2M-4M (L1 entry 1, unallocated) get the table of 0-2M; disk byte 4096 gets the cluster of byte 0
    await patch(image, [
      [l1 + 8, await u64(image, l1), 8],
      [l2 + 8, await u64(image, l2), 8],
    ]);
    for (const over of ['file', 'http'] as const) await deploysLikeQemuImg(image, 8 * MiB, over);
  });

  it('refuses an L1 table, L2 table or data cluster at an unaligned offset or inside the header, as qemu-img does, before writing anything', async () => {
    const image = await qcow2('aligned', '8M', 'cluster_size=4096', ['write -P 0x51 0 64k', 'write -P 0x52 4M 1200k']);
    const l1 = Number(await u64(image, 40));
    const l2 = Number((await u64(image, l1)) & OFFSET_MASK);
    const data = Number((await u64(image, l2)) & OFFSET_MASK);
    const cases: [string, [number, bigint, 4 | 8][], RegExp][] = [
      ['l1-at-8', [[40, 8n, 8]], /l1_table_offset \(byte 40\) is 8: not a cluster boundary/],
      ['l2-unaligned', [[l1, (1n << 63n) | BigInt(l2 + 512), 8]], /L2 table .*unaligned/],
      ['data-in-header', [[l2, (1n << 63n) | 0x200n, 8]], /disk byte 0 .*unaligned/],
      ['data-unaligned', [[l2, (1n << 63n) | BigInt(data + 512), 8]], /disk byte 0 .*unaligned/],
    ];
    for (const [name, values, message] of cases) {
      const bad = await patchedCopy(image, name, values);
      expect(
        (
          await execa('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', bad, path.join(dir, `${name}.raw`)], {
            reject: false,
          })
        ).exitCode,
        `qemu-img refuses ${name}`,
      ).not.toBe(0);
      const target = await oldDiskWithTable(path.join(dir, `${name}.target`), 8 * MiB);
      const before = await sha256File(target);
      const r = await deploy([bad, target, '--no-verify']);
      expect(r.exitCode, `${name}: ${r.all}`).toBe(2);
      expect(String(r.all)).toMatch(message);
      expect(String(r.all)).toMatch(/nothing was written/);
      expect(await sha256File(target), `${name}: the target is untouched`).toBe(before);
      // over http the header is known before writing, an L2 table only on its way: either way it fails
      const h = await deploy([`${base}/good/${path.basename(bad)}`, target, '--no-verify']);
      expect(h.exitCode, `${name} over http: ${h.all}`).toBeOneOf(name === 'l1-at-8' ? [2] : [1, 2]);
      expect(String(h.all)).toMatch(message);
    }
  });

  it('refuses an incompatible feature bit that neither bareon nor qemu-img knows while validating: the old table stays', async () => {
    const image = await qcow2('feature-bit', '8M', 'cluster_size=4096', [
      'write -P 0x61 0 64k',
      'write -P 0x62 4M 1200k',
    ]);
    await patch(image, [[72, 1n << 5n, 8]]);
    for (const source of [image, `${base}/good/feature-bit.qcow2`]) {
      const target = await oldDiskWithTable(path.join(dir, 'feature-bit.target'), 8 * MiB);
      const before = await sha256File(target);
      const r = await deploy([source, target, '--no-verify']);
      expect(r.exitCode, String(r.all)).toBe(2);
      expect(String(r.all)).toMatch(/incompatible_features.*0x20/);
      expect(String(r.all)).not.toMatch(/cleared the partition tables/);
      expect(await sha256File(target), 'the target is untouched').toBe(before);
    }
  });

  it('refuses an image that shares one L2 table and one cluster among millions of disk positions, before its map outgrows memory', async () => {
    const image = await qcow2('shared-bomb', '16G', 'cluster_size=512', ['write -P 0x5a 0 512']);
    const fh = await open(image, 'r+');
    try {
      const header = Buffer.alloc(48);
      await fh.read(header, 0, 48, 0);
      const l1Size = header.readUInt32BE(36);
      const l1Offset = Number(header.readBigUInt64BE(40));
      const entry = Buffer.alloc(8);
      await fh.read(entry, 0, 8, l1Offset);
      // every L1 entry points at the one L2 table, and every entry of that table at the one cluster
      await fh.write(Buffer.alloc(l1Size * 8).fill(entry), 0, l1Size * 8, l1Offset);
      const l2 = Number(entry.readBigUInt64BE(0) & 0x00ff_ffff_ffff_fe00n);
      const cluster = Buffer.alloc(8);
      await fh.read(cluster, 0, 8, l2);
      await fh.write(Buffer.alloc(512).fill(cluster), 0, 512, l2);
    } finally {
      await fh.close();
    }
    for (const source of [image, `${base}/good/shared-bomb.qcow2`]) {
      const target = path.join(dir, `shared-bomb.${source === image ? 'file' : 'http'}.target`);
      const r = await deploy([source, target, '--no-verify', '--size', '16G']);
      expect(r.exitCode, `${source}: ${r.all}`).toBe(source === image ? 2 : 1);
      expect(String(r.all)).toMatch(/its tables map more than \d+ clusters of the disk/);
      expect(String(r.all)).not.toMatch(/heap out of memory|RangeError|\n\s+at /);
    }
  });

  it('refuses a huge or inconsistent virtual size with a ValidationError naming the source and the field, before the target is created', async () => {
    const image = await qcow2('sizes', '8M', 'cluster_size=4096', ['write -P 0x71 0 64k', 'write -P 0x72 4M 1200k']);
    const cases: [string, [number, bigint, 4 | 8][], RegExp][] = [
      // 2 MiB clusters: 2^23 L1 entries cover 2^62 bytes (the refcount table is moved to an aligned offset)
      [
        'size-2-62',
        [
          [24, 1n << 62n, 8],
          [20, 21n, 4],
          [36, 1n << 23n, 4],
          [40, 2n << 20n, 8],
          [48, 4n << 20n, 8],
        ],
        /size.*4611686018427387904/,
      ],
      ['size-l1-short', [[24, 1n << 40n, 8]], /size.*1099511627776.*l1_size|l1_size.*size.*1099511627776/],
    ];
    for (const [name, values, message] of cases) {
      const bad = await patchedCopy(image, name, values);
      for (const source of [bad, `${base}/good/${name}.qcow2`]) {
        const target = path.join(dir, `${name}.${source === bad ? 'file' : 'http'}.target`);
        const r = await deploy([source, target, '--no-verify']);
        expect(r.exitCode, `${source}: ${r.all}`).toBe(2);
        expect(String(r.all)).toMatch(new RegExp(`source ${source.replace(/[.]/g, '[.]')}: `));
        expect(String(r.all)).toMatch(message);
        expect(String(r.all)).not.toMatch(/RangeError|out of range|\n\s+at /);
        await expect(stat(target), 'no target file was created').rejects.toThrow(/ENOENT/);
      }
    }
  });
});
