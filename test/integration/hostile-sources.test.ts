import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { deploy, leftovers, sha256File, tarZst } from '../helpers/deploy.js';

/** Sources that are hostile, odd or broken: each gets a clear refusal or an honest deploy. */
const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');
const MiB = 2 ** 20;
let dir: string;
let server: http.Server;
/** http://127.0.0.1:PORT: /files/NAME serves NAME of the test dir; every other path is a 404. */
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sources-'));
  server = http.createServer(async (req, res) => {
    const m = /^\/files\/([^/]+)$/.exec(req.url ?? '');
    const file = m && path.join(dir, m[1]);
    const st = file && (await stat(file).catch(() => undefined));
    if (!st) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': st.size });
    createReadStream(file!).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A manifest as bareon-build writes it, with one artifact. */
const manifest = (artifact: { uri: string; format: string; sha256: string; size: number }) =>
  JSON.stringify({
    manifest_version: 1,
    name: 'm',
    created: '2026-01-01T00:00:00Z',
    profile_digest: 'x',
    base_image: 'sha256:0',
    image: 'sha256:1',
    builder: 'debian',
    artifacts: [artifact],
    packages: [],
  });

describe('remote manifests', () => {
  it('resolve an artifact named by an absolute path against their own URL, never this machine', async () => {
    const local = path.join(dir, 'local-secret.raw');
    await writeFile(local, Buffer.alloc(4 * MiB, 0x5a));
    await writeFile(
      path.join(dir, 'evil.manifest.json'),
      manifest({ uri: local, format: 'raw', sha256: await sha256File(local), size: 4 * MiB }),
    );
    const target = path.join(dir, 'evil.img');
    const r = await deploy([`${base}/files/evil.manifest.json`, target, '--size', '8M']);
    expect(r.exitCode, String(r.all)).toBe(2);
    expect(r.stderr).toContain(`${base}${local}: the server answered 404`);
    const written = await readFile(target).catch(() => Buffer.alloc(0));
    expect(written.includes(Buffer.alloc(4096, 0x5a))).toBe(false);
  });

  it('naming themselves as their artifact are refused, not followed without end', async () => {
    await writeFile(
      path.join(dir, 'loop.manifest.json'),
      manifest({ uri: 'loop.manifest.json', format: 'raw', sha256: '0'.repeat(64), size: 1 }),
    );
    const r = await deploy([`${base}/files/loop.manifest.json`, path.join(dir, 'loop.img'), '--size', '8M']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/names .*loop\.manifest\.json, another manifest, as its artifact/);
  });

  it('refuse an artifact uri of another scheme', async () => {
    await writeFile(
      path.join(dir, 'file-uri.manifest.json'),
      manifest({ uri: 'file:///etc/passwd', format: 'raw', sha256: '0'.repeat(64), size: 1 }),
    );
    const r = await deploy([`${base}/files/file-uri.manifest.json`, path.join(dir, 'file-uri.img'), '--size', '8M']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/artifact uri "file:\/\/\/etc\/passwd" is not an http\(s\) URL/);
  });

  it('under 1 MiB deploy their artifact (a short stream is not a crash)', async () => {
    const tarball = path.join(dir, 'small.tar.zst');
    await tarZst(tarball, [['etc/hostname', 'small\n']]);
    await writeFile(
      path.join(dir, 'small.manifest.json'),
      manifest({
        uri: 'small.tar.zst',
        format: 'tar.zst',
        sha256: await sha256File(tarball),
        size: (await stat(tarball)).size,
      }),
    );
    const target = path.join(dir, 'small-manifest.img');
    const r = await deploy([`${base}/files/small.manifest.json`, target, '--layout', PLAIN, '--size', '256M']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(r.all).not.toMatch(/ERR_STREAM| {4}at /);
    expect(await leftovers(target)).toEqual([]);
  });

  it('that are not JSON are a usage error naming the manifest', async () => {
    const broken = path.join(dir, 'broken.manifest.json');
    await writeFile(broken, '{"manifest_version": 1, "name": "m", "artifacts": [');
    const r = await deploy([broken, path.join(dir, 'broken.img'), '--size', '8M']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`manifest ${broken}: not valid JSON`);
  });
});

describe('small and odd sources', () => {
  it('a tarball under 1 MiB on stdin deploys', async () => {
    const tarball = path.join(dir, 'stdin.tar.zst');
    await tarZst(tarball, [['etc/hostname', 'stdin\n']]);
    const target = path.join(dir, 'stdin.img');
    const r = await deploy(['-', target, '--layout', PLAIN, '--size', '256M', '--no-verify'], {
      inputFile: tarball,
      stdin: undefined,
    });
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(r.all).not.toMatch(/ERR_STREAM| {4}at /);
  });

  it('a filesystem image deploys onto a layout that names no UUID, and fstab names the image’s', async () => {
    const tree = path.join(dir, 'fs-tree');
    await mkdir(path.join(tree, 'etc'), { recursive: true });
    await writeFile(path.join(tree, 'etc/hostname'), 'fs\n');
    const image = path.join(dir, 'plain.ext4');
    await execa('mkfs.ext4', ['-q', '-F', '-d', tree, image, '32M']);
    const uuid = (await execa('blkid', ['-s', 'UUID', '-o', 'value', image])).stdout.trim();
    const target = path.join(dir, 'fs.img');
    const r = await deploy([image, target, '--layout', PLAIN, '--size', '128M', '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    const fstab = (await execa('debugfs', ['-R', 'cat /etc/fstab', `${target}?offset=${MiB}`], { stderr: 'ignore' }))
      .stdout;
    expect(fstab).toContain(`UUID=${uuid}  /  ext4`);
  });

  it('a truncated filesystem image is refused before writing, even with --no-verify', async () => {
    const image = path.join(dir, 'cut.ext4');
    await execa('mkfs.ext4', ['-q', '-F', image, '32M']);
    await execa('truncate', ['-s', '20M', image]);
    const target = path.join(dir, 'cut.img');
    const r = await deploy([image, target, '--layout', PLAIN, '--size', '128M', '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/cut\.ext4: .*32\.0 MiB.*20\.0 MiB/);
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
  });

  it('without a checksum says so once', async () => {
    const tarball = path.join(dir, 'nosum.tar.zst');
    await tarZst(tarball, [['etc/hostname', 'x\n']]);
    const r = await deploy([tarball, path.join(dir, 'nosum.img'), '--layout', PLAIN, '--size', '256M']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.match(/has no checksum to verify against/g)).toHaveLength(1);
  });
});

describe('warnings', () => {
  it('are JSON events under --log-format json, not lines on stderr', async () => {
    const tarball = path.join(dir, 'warn.tar.zst');
    await tarZst(tarball, [['etc/hostname', 'x\n']]);
    const r = await deploy([
      tarball,
      path.join(dir, 'warn.img'),
      '--layout',
      PLAIN,
      '--size',
      '256M',
      '--no-verify',
      '--log-format',
      'json',
    ]);
    expect(r.exitCode, String(r.all)).toBe(0);
    const warnings = String(r.stdout)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === 'warning');
    expect(warnings).toEqual([
      expect.objectContaining({
        text: expect.stringMatching(/^--no-verify: .*warn\.tar\.zst is written without checking its sha256$/),
      }),
    ]);
    expect(r.stderr).toBe('');
  });
});

describe('sizes', () => {
  it('a raw.zst that carries no size and expands past the target stops at the target’s end', async () => {
    const raw = path.join(dir, 'big.raw');
    await execa('truncate', ['-s', '256M', raw]);
    await execa('sgdisk', ['-o', raw]);
    // more data past the target's end than the filesystem below it has room for
    await execa('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'seek=100', 'count=90', 'conv=notrunc', 'status=none']);
    const zst = path.join(dir, 'big.raw.zst');
    await execa('sh', ['-c', `zstd -q -c < ${raw} > ${zst}`]); // from a pipe: no content size in the frame
    // the target file lives on a 96 MiB filesystem: writing past its 64 MiB would fill that instead
    const fsImage = path.join(dir, 'room.ext4');
    await execa('mkfs.ext4', ['-q', '-F', fsImage, '96M']);
    const mnt = path.join(dir, 'room');
    await mkdir(mnt);
    await execa('mount', ['-o', 'loop', fsImage, mnt]);
    try {
      const target = path.join(mnt, 'small-target.img');
      const r = await deploy([zst, target, '--size', '64M', '--no-verify']);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/the image is larger than the target: it goes past 67108864 bytes/);
      expect((await stat(target)).size).toBe(64 * MiB);
    } finally {
      await execa('umount', ['--detach-loop', mnt]);
    }
  });

  it('a size too large to handle is a usage error and creates nothing', async () => {
    const tarball = path.join(dir, 'size.tar.zst');
    await tarZst(tarball, [['etc/hostname', 'x\n']]);
    const target = path.join(dir, 'huge.img');
    const r = await deploy([tarball, target, '--layout', PLAIN, '--size', '99999999999999TiB', '--no-verify']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--size: "99999999999999TiB" is larger than bareon handles/);
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
  });

  it('a size past what the target’s filesystem allows fails cleanly and leaves no file', async () => {
    const tarball = path.join(dir, 'size.tar.zst');
    const target = path.join(dir, 'efbig.img');
    const r = await deploy([tarball, target, '--layout', PLAIN, '--size', '100TiB', '--no-verify']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/cannot create it to 100\.0 TiB \(larger than its filesystem allows\)/);
    expect(r.stderr).not.toMatch(/RangeError| {4}at /);
    await expect(stat(target)).rejects.toThrow(/ENOENT/);
  });
});
