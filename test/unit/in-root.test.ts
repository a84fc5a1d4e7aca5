import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CleanupStack } from '../../src/core/cleanup.js';
import type { HostExecutor } from '../../src/host/executor.js';
import {
  appendFileInRoot,
  assertPlainTree,
  readFileInRoot,
  resolveInRoot,
  writeFileInRoot,
} from '../../src/host/in-root.js';
import { bindSystemDirs } from '../../src/host/mount.js';

let top: string;
let root: string;
/** Outside the root: what a hostile image points at. */
let outside: string;

beforeAll(async () => {
  top = await mkdtemp(path.join(tmpdir(), 'bareon-inroot-'));
  root = path.join(top, 'root');
  outside = path.join(top, 'outside');
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, 'passwd'), 'host\n');
  await symlink(path.join(outside, 'passwd'), path.join(root, 'etc/abs-link'));
  await symlink('../../../outside/passwd', path.join(root, 'etc/rel-link'));
  await symlink('/etc', path.join(root, 'etc-link'));
  await symlink('loop-b', path.join(root, 'loop-a'));
  await symlink('loop-a', path.join(root, 'loop-b'));
  await writeFile(path.join(root, 'file'), 'x');
  await execa('mkfifo', [path.join(root, 'etc/fifo')]);
});
afterAll(async () => {
  await rm(top, { recursive: true, force: true });
});

describe('paths inside a deployed root', () => {
  it('resolve absolute links from the root and stop ".." at the root', async () => {
    expect(await resolveInRoot(root, '/etc/abs-link')).toBe(path.join(root, outside, 'passwd'));
    expect(await resolveInRoot(root, 'etc/rel-link')).toBe(path.join(root, 'outside/passwd'));
    expect(await resolveInRoot(root, '../../..')).toBe(root);
    expect(await resolveInRoot(root, 'etc-link/fstab')).toBe(path.join(root, 'etc/fstab'));
    expect(await resolveInRoot(root, 'etc/abs-link', { follow: false })).toBe(path.join(root, 'etc/abs-link'));
  });

  it('write through links into the root, never outside it', async () => {
    await writeFileInRoot(root, 'etc/abs-link', Buffer.from('deployed\n'));
    expect(await readFile(path.join(outside, 'passwd'), 'utf8')).toBe('host\n');
    expect(await readFile(path.join(root, outside, 'passwd'), 'utf8')).toBe('deployed\n');
    await writeFileInRoot(root, 'outside/passwd', Buffer.from('in root\n'));
    await appendFileInRoot(root, 'etc/rel-link', Buffer.from('more\n'));
    expect(await readFileInRoot(root, 'outside/passwd')).toEqual(Buffer.from('in root\nmore\n'));
    expect(await readFile(path.join(outside, 'passwd'), 'utf8')).toBe('host\n');
  });

  it('refuse link loops, files used as directories, and anything but regular files', async () => {
    await expect(resolveInRoot(root, 'loop-a')).rejects.toThrow(/more than 40 symlinks/);
    await expect(resolveInRoot(root, 'file/x')).rejects.toThrow(/\/file is not a directory/);
    await expect(writeFileInRoot(root, 'etc/fifo', Buffer.from('x'))).rejects.toThrow(
      /\/etc\/fifo in the deployed root .* is a FIFO, not a regular file/,
    );
    await expect(readFileInRoot(root, 'etc')).rejects.toThrow(/is a directory/);
  });

  it('tell a tree of plain files from one with links or devices in it', async () => {
    await mkdir(path.join(root, 'plain/sub'), { recursive: true });
    await writeFile(path.join(root, 'plain/sub/a'), 'a');
    await expect(assertPlainTree(path.join(root, 'plain'), 'plain')).resolves.toBeUndefined();
    await expect(assertPlainTree(path.join(root, 'etc'), '/etc')).rejects.toThrow(
      /\/etc holds entries that are not files or directories: .*abs-link \(a symlink\)/,
    );
  });
});

describe('the chroot of an initramfs rebuild', () => {
  it('binds nothing when one of /dev, /proc, /sys, /run is a link, even the last', async () => {
    const tree = path.join(top, 'chroot');
    await mkdir(path.join(tree, 'dev'), { recursive: true });
    await symlink('dev/shm/x', path.join(tree, 'sys'));
    const ran: string[][] = [];
    const ex = {
      run: async (cmd: string[]) => {
        ran.push(cmd);
        return { exitCode: 0, stdout: '', stderr: '', tail: '' };
      },
    } as unknown as HostExecutor;
    await expect(bindSystemDirs(ex, new CleanupStack(), tree)).rejects.toThrow(
      /the deployed root's \/sys is a symlink/,
    );
    expect(ran).toEqual([]);
  });
});
