import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { deploy, leftovers, tarZst } from '../helpers/deploy.js';

/**
 * Root filesystems that try to make bareon-deploy write on the deploying machine through symlinks
 * in the image: every write lands inside the target, where the booted system will find it.
 */
const PLAIN = path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml');
const MiB = 2 ** 20;
let dir: string;
/** Stands for this machine's own files: nothing in it may change. */
let host: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'hostile-'));
  host = path.join(dir, 'host');
  await mkdir(path.join(host, 'esp-files'), { recursive: true });
  await writeFile(path.join(host, 'fstab'), 'the host fstab\n');
  await writeFile(path.join(host, 'esp-files', 'keep-me'), 'a host file\n');
  await writeFile(path.join(host, 'secret'), 'a host secret\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The host stand-in's files with their content. */
async function hostState(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (at: string): Promise<void> => {
    for (const e of await readdir(at, { withFileTypes: true })) {
      const full = path.join(at, e.name);
      if (e.isDirectory()) await walk(full);
      else out[path.relative(host, full)] = await readFile(full, 'utf8');
    }
  };
  await walk(host);
  return out;
}

/** A file's content inside the ext4 filesystem at `offset` of `image`, read with debugfs (no mount). */
async function catInImage(image: string, offset: number, file: string): Promise<string> {
  return (await execa('debugfs', ['-R', `cat ${file}`, `${image}?offset=${offset}`], { stderr: 'ignore' })).stdout;
}

/** Where the last partition of a GPT image starts, in bytes. */
async function lastPartitionStart(image: string): Promise<number> {
  const { partitiontable } = JSON.parse((await execa('sfdisk', ['--json', image])).stdout);
  return partitiontable.partitions.at(-1).start * 512;
}

describe('a rootfs tarball with symlinks that point at this machine', () => {
  it('has /etc/fstab written inside the target when etc/fstab links to a host file', async () => {
    const before = await hostState();
    const tarball = path.join(dir, 'fstab-link.tar.zst');
    await tarZst(tarball, [
      ['etc/hostname', 'x\n'],
      ['etc/fstab', { link: path.join(host, 'fstab') }],
    ]);
    const target = path.join(dir, 'fstab-link.img');
    const r = await deploy([tarball, target, '--layout', PLAIN, '--size', '256M', '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(await hostState()).toEqual(before);
    // the link resolves inside the deployed root, as it will once booted
    const fstab = await catInImage(target, await lastPartitionStart(target), path.join(host, 'fstab'));
    expect(fstab).toMatch(/^UUID=\S+\s+\/\s+ext4/m);
    expect(await leftovers(target)).toEqual([]);
  });

  it('leaves a host directory alone when boot/efi links to it, and copies nothing from it onto the ESP', async () => {
    const before = await hostState();
    const layout = path.join(dir, 'esp.yaml');
    await writeFile(
      layout,
      'disks:\n  - id: disk\n    partitions:\n      - {type: esp, size: 64MiB, fs: {type: vfat, label: EFI}, mount: /boot/efi}\n      - {type: linux, size: remaining, fs: {type: ext4, label: root}, mount: /}\n',
    );
    const tarball = path.join(dir, 'esp-link.tar.zst');
    await tarZst(tarball, [
      ['etc/hostname', 'x\n'],
      ['boot/efi', { link: path.join(host, 'esp-files') }],
    ]);
    const target = path.join(dir, 'esp-link.img');
    const r = await deploy([tarball, target, '--layout', layout, '--size', '256M', '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(await hostState()).toEqual(before);
    const esp = (
      await execa('mdir', ['-b', '-i', `${target}@@${MiB}`, '::/'], { reject: false, env: { MTOOLS_SKIP_CHECK: '1' } })
    ).stdout;
    expect(esp).not.toMatch(/keep-me/i);
    expect(await leftovers(target)).toEqual([]);
  });

  it('refuses to copy a link under the ESP mount point onto the ESP, naming it', async () => {
    const layout = path.join(dir, 'esp.yaml');
    const tarball = path.join(dir, 'esp-inner-link.tar.zst');
    await tarZst(tarball, [
      ['etc/hostname', 'x\n'],
      ['boot/efi/EFI/debian/grub.cfg', 'search\n'],
      ['boot/efi/EFI/debian/stolen', { link: path.join(host, 'secret') }],
    ]);
    const target = path.join(dir, 'esp-inner-link.img');
    const r = await deploy([tarball, target, '--layout', layout, '--size', '256M', '--no-verify']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /\/boot\/efi .*holds entries that are not files or directories: EFI\/debian\/stolen \(a symlink\)/,
    );
    const esp = (
      await execa('mtype', ['-i', `${target}@@${MiB}`, '::/EFI/debian/stolen'], {
        reject: false,
        env: { MTOOLS_SKIP_CHECK: '1' },
      })
    ).stdout;
    expect(esp).not.toContain('a host secret');
    expect(await leftovers(target)).toEqual([]);
  });
});

describe('a filesystem image whose mount point is a symlink to a host path', () => {
  it('mounts the other filesystems inside the deployed root, creating nothing on this machine', async () => {
    const tree = path.join(dir, 'fs-tree');
    await mkdir(path.join(tree, 'etc'), { recursive: true });
    await writeFile(path.join(tree, 'etc/hostname'), 'x\n');
    const made = path.join(host, 'made-by-deploy');
    await symlink(made, path.join(tree, 'data'));
    const image = path.join(dir, 'root.ext4');
    await execa('mkfs.ext4', ['-q', '-F', '-d', tree, image, '64M']);
    const target = path.join(dir, 'mount-link.img');
    const r = await deploy([
      image,
      target,
      '--layout',
      path.join(REPO, 'test/fixtures/layouts/root-and-data.yaml'),
      '--size',
      '512M',
      '--no-verify',
    ]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(await hostState()).not.toHaveProperty('made-by-deploy');
    await expect(readdir(made)).rejects.toThrow(/ENOENT/);
    expect(await leftovers(target)).toEqual([]);
  });
});
