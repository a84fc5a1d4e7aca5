import { execa } from 'execa';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { epochEnv, recordDate, resolveEpoch } from '../../src/build/epoch.js';
import { baseKey } from '../../src/build/step-cache.js';
import { diffPackages, diffTrees, formatPackageDiff, formatTreeDiff } from '../../src/diff/compare.js';
import type { TreeEntry } from '../../src/diff/tree-index.js';
import { clampExt4Ctimes, ctimeScript, initializedInodes } from '../../src/disk/ext4-times.js';
import { HostExecutor } from '../../src/host/executor.js';
import { ProfileSchema } from '../../src/objects/profile.js';

describe('the build epoch', () => {
  it('comes from SOURCE_DATE_EPOCH first, then the profile', () => {
    expect(resolveEpoch(5, { SOURCE_DATE_EPOCH: '1767225600' })).toEqual({
      epoch: 1767225600,
      from: 'SOURCE_DATE_EPOCH',
    });
    expect(resolveEpoch(5, {}, 'p.yaml')).toEqual({ epoch: 5, from: 'p.yaml epoch:' });
    expect(resolveEpoch(undefined, {})).toEqual({});
    expect(() => resolveEpoch(undefined, { SOURCE_DATE_EPOCH: 'yesterday' })).toThrow(ValidationError);
    expect(epochEnv(7)).toEqual({ SOURCE_DATE_EPOCH: '7' });
    expect(recordDate(1767225600)).toBe('2026-01-01T00:00:00.000Z');
  });

  it('is seconds or an ISO date in a profile', () => {
    const base = { name: 'p', base: { suite: 'bookworm' } };
    expect(ProfileSchema.parse({ ...base, epoch: 1767225600 }).epoch).toBe(1767225600);
    expect(ProfileSchema.parse({ ...base, epoch: '2026-01-01T00:00:00Z' }).epoch).toBe(1767225600);
    expect(ProfileSchema.safeParse({ ...base, epoch: -1 }).success).toBe(false);
    expect(ProfileSchema.safeParse({ ...base, epoch: 'soon' }).success).toBe(false);
  });

  it('changes every step cache key, since steps write different times under it', () => {
    expect(baseKey('sha256:abc', 1)).not.toBe(baseKey('sha256:abc'));
    expect(baseKey('sha256:abc', 1)).not.toBe(baseKey('sha256:abc', 2));
    expect(baseKey('sha256:abc')).toBe(baseKey('sha256:abc'));
  });
});

describe('ext4 inode change times', () => {
  const stats = [
    'Inodes per group:         100',
    ' Group  0: block bitmap at 117, inode bitmap at 125, inode table at 133',
    '           0 free blocks, 0 free inodes, 10 used directories, 0 unused inodes',
    ' Group  1: block bitmap at 118, inode bitmap at 126, inode table at 594',
    '           0 free blocks, 97 free inodes, 1 used directories, 97 unused inodes',
    ' Group  2: block bitmap at 119, inode bitmap at 127, inode table at 1055',
    '           0 free blocks, 100 free inodes, 0 used directories, 100 unused inodes',
    '           [Inode not init, Checksum 0x3601]',
  ].join('\n');

  it("are set on every inode below each group's high-water mark", () => {
    expect(initializedInodes(stats)).toEqual([
      { first: 1, last: 100 },
      { first: 101, last: 103 },
    ]);
    const script = ctimeScript(stats, 42).trim().split('\n');
    expect(script).toHaveLength(104);
    expect(script.at(-2)).toBe('sif <103> ctime @42');
    expect(script.at(-1)).toBe('ssv wtime @42');
  });

  it('leave a real filesystem consistent with every ctime at the epoch', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-ctime-'));
    await writeFile(path.join(dir, 'a'), 'a');
    const img = path.join(path.dirname(dir), `${path.basename(dir)}.img`);
    await execa('truncate', ['-s', '16M', img]);
    await execa('mkfs.ext4', ['-q', '-F', '-d', dir, img]);
    const n = await clampExt4Ctimes(new HostExecutor(), img, 1767225600);
    expect(n).toBeGreaterThan(10);
    const stat = await execa('debugfs', ['-R', 'stat /a', img]);
    expect(stat.stdout).toMatch(/ctime: 0x6955b900/);
    expect((await execa('dumpe2fs', ['-h', img], { env: { TZ: 'UTC' } })).stdout).toMatch(
      /Last write time:\s+Thu Jan {2}1 00:00:00 2026/,
    );
    await execa('e2fsck', ['-fn', img]);
  });
});

const entry = (over: Partial<TreeEntry> = {}): TreeEntry => ({
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: 1,
  mtime: 0,
  digest: 'aa',
  ...over,
});

describe('bareon diff of trees and packages', () => {
  it('lists added, removed and changed entries with the fields that changed', () => {
    const a = new Map([
      ['/same', entry()],
      ['/gone', entry()],
      ['/etc/shadow', entry({ digest: 'aa', mtime: 0 })],
    ]);
    const b = new Map([
      ['/same', entry()],
      ['/new', entry({ mode: 0o755 })],
      ['/etc/shadow', entry({ digest: 'bb', mtime: 86400, mode: 0o640 })],
    ]);
    const d = diffTrees(a, b);
    expect(d.added.map((x) => x.path)).toEqual(['/new']);
    expect(d.removed.map((x) => x.path)).toEqual(['/gone']);
    expect(d.changed).toEqual([
      {
        path: '/etc/shadow',
        changes: [
          { field: 'mode', a: '0644', b: '0640' },
          { field: 'content', a: 'aa', b: 'bb' },
          { field: 'mtime', a: '1970-01-01T00:00:00Z', b: '1970-01-02T00:00:00Z' },
        ],
      },
    ]);
    expect(formatTreeDiff(d)).toEqual([
      '+ /new  file 0755 0:0 1 B',
      '- /gone  file 0644 0:0 1 B',
      '~ /etc/shadow  mode 0644 → 0640, content aa → bb, mtime 1970-01-01T00:00:00Z → 1970-01-02T00:00:00Z',
    ]);
    expect(formatTreeDiff(d, 1)).toEqual(['+ /new  file 0755 0:0 1 B', '… and 2 more']);
  });

  it('lists packages by name and architecture', () => {
    const d = diffPackages(
      [
        { name: 'libc6', version: '2.36-9', arch: 'amd64' },
        { name: 'old', version: '1', arch: 'all' },
      ],
      [
        { name: 'libc6', version: '2.36-9+deb12u1', arch: 'amd64' },
        { name: 'new', version: '2', arch: 'all' },
      ],
    );
    expect(formatPackageDiff(d)).toEqual(['+ new 2 (all)', '- old 1 (all)', '~ libc6 2.36-9 → 2.36-9+deb12u1']);
  });
});
