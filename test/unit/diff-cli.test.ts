import { execa } from 'execa';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bareon } from '../helpers/cli.js';

async function tree(root: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await writeFile(path.join(root, name), content);
  }
}

/** A GPT disk image with one ext4 partition at 1 MiB, filled from `dir`. */
async function disk(file: string, dir: string): Promise<void> {
  await execa('truncate', ['-s', '24M', file]);
  await execa('sgdisk', [
    '-Z',
    '-U',
    '11111111-2222-3333-4444-555555555555',
    '-n',
    '1:2048:0',
    '-u',
    '1:66666666-2222-3333-4444-555555555555',
    '-c',
    '1:root',
    file,
  ]);
  await execa(
    'mkfs.ext4',
    [
      '-q',
      '-F',
      '-U',
      '77777777-2222-3333-4444-555555555555',
      '-E',
      'offset=1048576,hash_seed=88888888-2222-3333-4444-555555555555',
      '-d',
      dir,
      file,
      '20M',
    ],
    { env: { E2FSPROGS_FAKE_TIME: '1767225600' } },
  );
}

describe('bareon diff', () => {
  it('lists the files two tarballs differ in, and exits 1; identical ones exit 0', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-diff-'));
    await tree(path.join(dir, 'a'), { 'etc/motd': 'hello\n', 'etc/gone': 'x', 'usr/bin/tool': '#!/bin/sh\n' });
    await tree(path.join(dir, 'b'), { 'etc/motd': 'hello, world\n', 'etc/new': 'y', 'usr/bin/tool': '#!/bin/sh\n' });
    const tar = (from: string, to: string, ...z: string[]) =>
      execa('tar', [
        '--sort=name',
        '--mtime=@0',
        '--owner=0',
        '--group=0',
        ...z,
        '-C',
        path.join(dir, from),
        '-cf',
        path.join(dir, to),
        '.',
      ]);
    await tar('a', 'a.tar.zst', '--zstd');
    await tar('b', 'b.tar.gz', '-z');
    await tar('a', 'a2.tar.zst', '--zstd');
    const r = await bareon('bareon', ['diff', path.join(dir, 'a.tar.zst'), path.join(dir, 'b.tar.gz')]);
    expect(r.exitCode, String(r.all)).toBe(1);
    expect(r.stdout).toContain('files: 1 added, 1 removed, 1 changed');
    expect(r.stdout).toMatch(/^ {2}\+ \/etc\/new {2}file 0644 0:0 1 B$/m);
    expect(r.stdout).toMatch(/^ {2}- \/etc\/gone /m);
    expect(r.stdout).toMatch(/^ {2}~ \/etc\/motd {2}size 6 → 13, content [0-9a-f]{12} → [0-9a-f]{12}$/m);
    const same = await bareon('bareon', ['diff', path.join(dir, 'a.tar.zst'), path.join(dir, 'a2.tar.zst')]);
    expect(same.exitCode, String(same.all)).toBe(0);
    expect(same.stdout).toContain('identical');
  });

  it('maps the bytes two disk images differ in to partitions and ext4 files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-diff-disk-'));
    await tree(path.join(dir, 'a'), { 'etc/hostname': 'one\n', 'big/blob': 'x'.repeat(100_000) });
    await tree(path.join(dir, 'b'), { 'etc/hostname': 'two\n', 'big/blob': 'x'.repeat(100_000) });
    await execa('touch', [
      '-d',
      '@1767225600',
      ...['a', 'b'].flatMap((t) => [
        path.join(dir, t, 'etc/hostname'),
        path.join(dir, t, 'big/blob'),
        path.join(dir, t, 'etc'),
        path.join(dir, t, 'big'),
        path.join(dir, t),
      ]),
    ]);
    await disk(path.join(dir, 'a.raw'), path.join(dir, 'a'));
    await disk(path.join(dir, 'b.raw'), path.join(dir, 'b'));
    const r = await bareon('bareon', ['diff', path.join(dir, 'a.raw'), path.join(dir, 'b.raw')]);
    expect(r.exitCode, String(r.all)).toBe(1);
    expect(r.stdout).toMatch(/partition 1 \(root\): .* ext4: \d+ file\(s\)/);
    expect(r.stdout).toMatch(/^ {4}\/etc\/hostname$/m);
    expect(r.stdout).not.toContain('/big/blob');
  });

  it('refuses to compare unlike things, naming both (exit 2)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-diff-bad-'));
    await writeFile(path.join(dir, 'm.json'), JSON.stringify({ manifest_version: 1 }));
    await execa('tar', ['-C', dir, '-cf', path.join(dir, 'x.tar'), 'm.json']);
    const r = await bareon('bareon', ['diff', path.join(dir, 'x.tar'), path.join(dir, 'm.json')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('x.tar is a tar and');
    const missing = await bareon('bareon', ['diff', path.join(dir, 'x.tar'), path.join(dir, 'nope.tar')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('nope.tar: no such file');
  });
});
