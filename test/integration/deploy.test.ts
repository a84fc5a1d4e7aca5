import { execa } from 'execa';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO } from '../helpers/cli.js';
import { deploy, leftovers, sha256File, startDeploy, tarZst } from '../helpers/deploy.js';
import { zstdHeadFrameCompressor } from '../../src/stream/zstd-head-frame.js';

const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');
let dir: string;
let server: http.Server;
let base: string;
const sha: Record<string, string> = {};

/** Serves files of `dir`: /good/F as is, /flip/F with one byte changed, /cut/F cut halfway under a full Content-Length. */
function serve(): Promise<void> {
  server = http.createServer(async (req, res) => {
    const [, mode, name] = req.url!.split('/');
    const file = path.join(dir, name);
    const size = (await stat(file)).size;
    res.writeHead(200, { 'content-length': size });
    if (mode === 'good') return void createReadStream(file).pipe(res);
    const data = await readFile(file);
    if (mode === 'flip') {
      data[Math.floor(size / 2)] ^= 0xff;
      return void res.end(data);
    }
    res.write(data.subarray(0, size / 2), () => res.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

const hasTable = async (file: string) => (await execa('sfdisk', ['--json', file], { reject: false })).exitCode === 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-deploy-test-'));
  // a small partitioned disk with an ext4 filesystem, raw and zstd-compressed
  const small = path.join(dir, 'small.raw');
  await execa('truncate', ['-s', '64M', small]);
  await execa('sgdisk', ['-o', '-n', '1:2048:0', '-t', '1:8300', small]);
  await execa('mkfs.ext4', ['-q', '-F', '-E', `offset=${2 ** 20}`, small, `${63 * 1024}k`]);
  await execa('dd', ['if=/dev/urandom', `of=${small}`, 'bs=1M', 'seek=40', 'count=8', 'conv=notrunc', 'status=none']);
  // incompressible bytes between the GPT and the first partition: the first zstd block is large
  await execa('dd', [
    'if=/dev/urandom',
    `of=${small}`,
    'bs=1K',
    'seek=20',
    'count=1000',
    'conv=notrunc',
    'status=none',
  ]);
  await execa('zstd', ['-q', '-f', small, '-o', `${small}.zst`]);
  // the same disk as bareon-build's raw.zst exporter writes it: the first MiB in a frame of its own
  await pipeline(
    createReadStream(small),
    zstdHeadFrameCompressor({ headBytes: 2 ** 20, totalBytes: 64 * 2 ** 20 }),
    createWriteStream(path.join(dir, 'small.hf.raw.zst')),
  );
  for (const f of ['small.raw', 'small.raw.zst', 'small.hf.raw.zst']) sha[f] = await sha256File(path.join(dir, f));
  await serve();
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('bareon-deploy of whole-disk images (no Docker: dead DOCKER_HOST, no docker on PATH)', () => {
  it('streams a raw.zst over http onto a new image file, verified', async () => {
    const target = path.join(dir, 'http-good.img');
    const r = await deploy([`${base}/good/small.raw.zst`, target, '--checksum', `sha256:${sha['small.raw.zst']}`]);
    expect(r.exitCode, String(r.all)).toBe(0);
    await execa('cmp', [path.join(dir, 'small.raw'), target]);
    expect(await leftovers(target)).toEqual([]);
  });

  it('fails on one flipped byte with a checksum error and leaves the target without a partition table', async () => {
    const target = path.join(dir, 'http-flip.img');
    await execa('truncate', ['-s', '64M', target]);
    await execa('sgdisk', ['-o', '-n', '1:2048:0', target]);
    expect(await hasTable(target)).toBe(true);
    const r = await deploy([`${base}/flip/small.raw`, target, '--checksum', `sha256:${sha['small.raw']}`]);
    expect(r.exitCode).toBe(1);
    expect(String(r.all)).toMatch(/checksum mismatch/);
    expect(String(r.all)).toMatch(/cleared the partition tables/);
    expect(await hasTable(target)).toBe(false);
  });

  it('fails on a stream cut halfway with a truncation error', async () => {
    const target = path.join(dir, 'http-cut.img');
    const r = await deploy([`${base}/cut/small.raw`, target, '--checksum', `sha256:${sha['small.raw']}`]);
    expect(r.exitCode).toBe(1);
    expect(String(r.all)).toMatch(/truncated/);
    expect(await hasTable(target)).toBe(false);
  });

  it.each([
    ["a head-frame raw.zst (bareon-build's)", 'small.hf.raw.zst', /head frame: zstd writes the image straight onto/],
    ['a one-frame raw.zst (zstd FILE)', 'small.raw.zst', /one zstd frame: zstd and dd write the image straight onto/],
  ])('writes %s straight onto the target: good, flipped, cut, and onto old data', async (_, file, how) => {
    const good = path.join(dir, `${file}-good.img`);
    const r = await deploy([`${base}/good/${file}`, good, '--checksum', `sha256:${sha[file]}`, '--log-format', 'json']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.all)).toMatch(how);
    await execa('cmp', [path.join(dir, 'small.raw'), good]);
    expect((await stat(good)).blocks * 512).toBeLessThan(32 * 2 ** 20); // zero runs stayed holes

    for (const [mode, error] of [
      ['flip', /checksum mismatch|corrupt/],
      ['cut', /truncated|corrupt/],
    ] as const) {
      const target = path.join(dir, `${file}-${mode}.img`);
      await execa('truncate', ['-s', '64M', target]);
      const bad = await deploy([`${base}/${mode}/${file}`, target, '--checksum', `sha256:${sha[file]}`]);
      expect(bad.exitCode, mode).toBe(1);
      expect(String(bad.all)).toMatch(error);
      expect(await hasTable(target), mode).toBe(false);
    }

    // a target full of old data: zeros must be written, not skipped
    const old = path.join(dir, `${file}-old.img`);
    await execa('sh', ['-c', `head -c 64M /dev/urandom > ${old}`]);
    const over = await deploy([path.join(dir, file), old, '--checksum', `sha256:${sha[file]}`]);
    expect(over.exitCode, String(over.all)).toBe(0);
    await execa('cmp', [path.join(dir, 'small.raw'), old]);
  });

  it('finishes the job when the reader of its output goes away (| head -1)', async () => {
    const target = path.join(dir, 'epipe.img');
    const hf = path.join(dir, 'small.hf.raw.zst');
    const line = `${process.execPath} ${BIN.deploy} ${hf} ${target} --checksum sha256:${sha['small.hf.raw.zst']} --log-format json | head -1`;
    const r = await execa('bash', ['-o', 'pipefail', '-c', line], { reject: false, all: true });
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.all)).not.toMatch(/EPIPE|Unhandled/);
    await execa('cmp', [path.join(dir, 'small.raw'), target]);
    expect(await leftovers(target)).toEqual([]);
  });

  it('needs a checksum or --no-verify, and warns on --no-verify', async () => {
    const target = path.join(dir, 'noverify.img');
    const refused = await deploy([path.join(dir, 'small.raw'), target]);
    expect(refused.exitCode).toBe(2);
    expect(String(refused.all)).toMatch(/no checksum to verify against/);
    await expect(stat(target)).rejects.toThrow();
    const r = await deploy([path.join(dir, 'small.raw'), target, '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.stderr)).toMatch(/warning: --no-verify/);
  });

  it('refuses a format that contradicts --format, from magic bytes and not the name', async () => {
    const r = await deploy([
      path.join(dir, 'small.raw.zst'),
      path.join(dir, 'fmt.img'),
      '--format',
      'qcow2',
      '--no-verify',
    ]);
    expect(r.exitCode).toBe(2);
    expect(String(r.all)).toMatch(/its bytes say raw\.zst, but qcow2 was expected/);
  });

  it('refuses a qcow2 with a backing file', async () => {
    const baseImg = path.join(dir, 'base.qcow2');
    const overlay = path.join(dir, 'overlay.qcow2');
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', baseImg, '64M']);
    await execa('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', baseImg, '-F', 'qcow2', overlay]);
    const r = await deploy([overlay, path.join(dir, 'backing.img'), '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(String(r.all)).toMatch(/has a backing file/);
  });

  it('refuses a target whose partition is mounted through an offset loop device, naming the mount', async () => {
    const target = path.join(dir, 'mounted.img');
    await execa('cp', ['--sparse=always', path.join(dir, 'small.raw'), target]);
    const mnt = await mkdtemp(path.join(dir, 'mnt-'));
    const loop = (
      await execa('losetup', [
        '--find',
        '--show',
        '--offset',
        String(2 ** 20),
        '--sizelimit',
        String(63 * 2 ** 20),
        target,
      ])
    ).stdout.trim();
    try {
      await execa('mount', [loop, mnt]);
      try {
        const before = await sha256File(target);
        const r = await deploy([
          path.join(dir, 'small.raw.zst'),
          target,
          '--checksum',
          `sha256:${sha['small.raw.zst']}`,
        ]);
        expect(r.exitCode).toBe(2);
        expect(String(r.all)).toContain(`is mounted on ${mnt}`);
        expect(String(r.all)).toContain(loop);
        expect(await sha256File(target)).toBe(before);
      } finally {
        await execa('umount', [mnt]);
      }
    } finally {
      await execa('losetup', ['--detach', loop]);
    }
  });

  it('writes onto a loop device only with --yes; without it and without a terminal it refuses', async () => {
    const backing = path.join(dir, 'loop-backing.img');
    await execa('truncate', ['-s', '128M', backing]);
    const loop = (await execa('losetup', ['--find', '--show', backing])).stdout.trim();
    try {
      const args = [path.join(dir, 'small.raw.zst'), loop, '--checksum', `sha256:${sha['small.raw.zst']}`];
      const refused = await deploy(args);
      expect(refused.exitCode).toBe(2);
      expect(String(refused.all)).toMatch(/refusing to overwrite block device .* without --yes/);
      const r = await deploy([...args, '--yes']);
      expect(r.exitCode, String(r.all)).toBe(0);
      const v = await execa('sgdisk', ['-v', loop]);
      expect(v.stdout).toContain('No problems found');
      await execa('e2fsck', ['-fn', `${backing}?offset=${2 ** 20}`]);
    } finally {
      await execa('losetup', ['--detach', loop]);
    }
  });
});

describe("sha512 checksums (Glance's default digest)", () => {
  const sha512 = async (file: string) => (await execa('sha512sum', [file])).stdout.split(' ')[0];

  it('verifies a raw over http, a local qcow2 and a local rootfs tarball; a wrong one fails naming sha512', async () => {
    const raw = path.join(dir, 'small.raw');
    const good = path.join(dir, 'sha512-http.img');
    const r = await deploy([`${base}/good/small.raw`, good, '--checksum', `sha512:${await sha512(raw)}`]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.all)).toMatch(/sha512 verified/);
    await execa('cmp', [raw, good]);

    // a local qcow2 is streamed (no direct reads by position, which would pass the check by)
    const qcow2 = path.join(dir, 'small.qcow2');
    await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    const fromQcow2 = path.join(dir, 'sha512-qcow2.img');
    const q = await deploy([qcow2, fromQcow2, '--checksum', `SHA512:${(await sha512(qcow2)).toUpperCase()}`]);
    expect(q.exitCode, String(q.all)).toBe(2);
    expect(String(q.all)).toMatch(/--checksum: expected sha256:<64 hex digits> or sha512:<128 hex digits>/);
    const q2 = await deploy([qcow2, fromQcow2, '--checksum', `sha512:${(await sha512(qcow2)).toUpperCase()}`]);
    expect(q2.exitCode, String(q2.all)).toBe(0);
    await execa('cmp', [raw, fromQcow2]);
    const wrongQcow2 = await deploy([qcow2, fromQcow2, '--checksum', `sha512:${await sha512(raw)}`]);
    expect(wrongQcow2.exitCode, String(wrongQcow2.all)).toBe(1);
    expect(String(wrongQcow2.all)).toMatch(/checksum mismatch: sha512/);
    expect(await hasTable(fromQcow2)).toBe(false);

    const tar = path.join(dir, 'sha512.tar.zst');
    await tarZst(tar, [['etc/hostname', 'sha512\n']]);
    const onLayout = path.join(dir, 'sha512-tar.img');
    const t = await deploy([
      tar,
      onLayout,
      '--layout',
      PLAIN,
      '--size',
      '256M',
      '--checksum',
      `sha512:${await sha512(tar)}`,
    ]);
    expect(t.exitCode, String(t.all)).toBe(0);
    expect(String(t.all)).toMatch(/sha512 verified/);

    const flipped = path.join(dir, 'sha512-flip.img');
    await execa('truncate', ['-s', '64M', flipped]);
    await execa('sgdisk', ['-o', '-n', '1:2048:0', flipped]);
    const f = await deploy([`${base}/flip/small.raw`, flipped, '--checksum', `sha512:${await sha512(raw)}`]);
    expect(f.exitCode).toBe(1);
    expect(String(f.all)).toMatch(/checksum mismatch: sha512 [0-9a-f]{128}, expected [0-9a-f]{128}/);
    expect(await hasTable(flipped)).toBe(false);
  });
});

describe('bareon-deploy of rootfs tarballs onto a layout', () => {
  it('refuses entries that escape the root, and writes nothing outside the target', async () => {
    const escaping = path.join(dir, 'escape.tar.zst');
    await tarZst(escaping, [
      ['etc/hostname', 'x\n'],
      ['../escape-bareon-test', 'owned\n'],
    ]);
    const target = path.join(dir, 'escape.img');
    const r = await deploy([escaping, target, '--layout', PLAIN, '--size', '256M', '--no-verify']);
    expect(r.exitCode).toBe(1);
    expect(String(r.all)).toMatch(/unsafe tar entry "\.\.\/escape-bareon-test"/);
    for (const where of [tmpdir(), '/', dir, path.dirname(tmpdir())])
      await expect(stat(path.join(where, 'escape-bareon-test'))).rejects.toThrow();
    expect(await hasTable(target)).toBe(false);

    const through = path.join(dir, 'symlink.tar.zst');
    await tarZst(through, [
      ['etc/hostname', 'x\n'],
      ['link', { link: '/var/tmp' }],
      ['link/escape-bareon-test', 'owned\n'],
    ]);
    const s = await deploy([
      through,
      path.join(dir, 'symlink.img'),
      '--layout',
      PLAIN,
      '--size',
      '256M',
      '--no-verify',
    ]);
    expect(s.exitCode).toBe(1);
    expect(String(s.all)).toMatch(/goes through the symlink "link"/);
    await expect(stat('/var/tmp/escape-bareon-test')).rejects.toThrow();
    expect(await leftovers(target)).toEqual([]);
  });

  it('--dry-run prints partitions with offsets and filesystems, and creates nothing', async () => {
    const rootfs = path.join(dir, 'tiny.tar.zst');
    await tarZst(rootfs, [['etc/hostname', 'tiny\n']]);
    const target = path.join(dir, 'dry.img');
    const r = await deploy([rootfs, target, '--layout', PLAIN, '--size', '1G', '--no-verify', '--dry-run']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.stdout)).toMatch(/1\. linux\s+offset\s+1048576\s+size\s+1022\.0 MiB\s+ext4 "root" on \//);
    expect(String(r.stdout)).toMatch(/mkfs\.ext4 -L root/);
    expect(String(r.stdout)).toMatch(/extract tar\.zst .* onto \/ \(ext4\)/);
    await expect(stat(target)).rejects.toThrow();
  });

  it('--only partitioning makes just the table; the rest of the chain finishes on a second run', async () => {
    const rootfs = path.join(dir, 'two-step.tar.zst');
    await tarZst(rootfs, [
      ['etc/hostname', 'two-step\n'],
      ['usr/bin/hello', '#!/bin/sh\necho hi\n'],
    ]);
    const target = path.join(dir, 'two-step.img');
    const first = await deploy([
      rootfs,
      target,
      '--layout',
      PLAIN,
      '--size',
      '512M',
      '--no-verify',
      '--only',
      'partitioning',
    ]);
    expect(first.exitCode, String(first.all)).toBe(0);
    expect((await execa('sgdisk', ['-v', target])).stdout).toContain('No problems found');
    expect(
      (await execa('blkid', ['-p', '-o', 'value', '-s', 'TYPE', `--offset=${2 ** 20}`, target], { reject: false }))
        .stdout,
    ).toBe('');
    const second = await deploy([
      rootfs,
      target,
      '--layout',
      PLAIN,
      '--no-verify',
      '--only',
      'filesystems,deploy,fstab',
    ]);
    expect(second.exitCode, String(second.all)).toBe(0);
    const hostname = (await execa('debugfs', ['-R', 'cat /etc/hostname', `${target}?offset=${2 ** 20}`])).stdout;
    expect(hostname).toBe('two-step');
    const fstab = (await execa('debugfs', ['-R', 'cat /etc/fstab', `${target}?offset=${2 ** 20}`])).stdout;
    expect(fstab).toMatch(/UUID=\S+\s+\/\s+ext4/);
  });

  it('SIGINT at a random point exits 130 and leaves no loop device, mount or temp dir', async () => {
    const rootfs = path.join(dir, 'share.tar.zst');
    await execa('sh', ['-c', `tar -C / -cf - usr/share usr/lib/x86_64-linux-gnu | zstd -q -T0 -1 -o ${rootfs}`]);
    const target = path.join(dir, 'sigint.img');
    const delay = 300 + Math.floor(Math.random() * 2500);
    const { process: child } = await startDeploy([rootfs, target, '--layout', PLAIN, '--size', '3G', '--no-verify']);
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGINT');
    const r = await child;
    console.log(`SIGINT after ${delay} ms: exit ${r.exitCode}`);
    expect(r.exitCode, String(r.all)).toBe(130);
    expect(await leftovers(target)).toEqual([]);
  });
});
