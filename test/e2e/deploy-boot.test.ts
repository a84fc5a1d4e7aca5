import { execa } from 'execa';
import { mkdtemp, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { deploy, leftovers } from '../helpers/deploy.js';
import { IDENTITY_PRINTED, instrumentIdentity, printedIdentity } from '../helpers/identity.js';
import { bootToLogin, type Firmware } from '../helpers/qemu.js';

const images = inject('bootableImages');
const GiB = 2 ** 30;
const qcow2Manifest = () => path.join(images.gpt, 'debian-bootable.manifest.json');
const tarManifest = () => path.join(images.tar, 'debian-bootable-tar.manifest.json');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join('/var/tmp', 'bareon-deploy-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What the kernel prints when the firmware booted it with Secure Boot enforced. */
const SECURE_BOOT_ON = /secureboot: Secure boot enabled/;

async function expectBoots(disk: string, firmware: Firmware, name: string, until?: RegExp[]): Promise<string> {
  const r = await bootToLogin(disk, { firmware, name, timeoutMs: 240_000, until });
  console.log(`${name}, ${firmware}: login after ${r.seconds.toFixed(1)} s`);
  expect(r.reachedLogin, r.report).toBe(true);
  return r.log;
}

/**
 * The two deploys of the bootable qcow2 below also prove first-boot hygiene: each is booted once
 * with a unit that prints its machine-id and SSH host key, and the two must differ.
 */
const identities: { name: string; machineId?: string; hostKey?: string; sshd?: string }[] = [];

async function bootsWithIdentity(disk: string, firmware: Firmware, name: string): Promise<string> {
  await instrumentIdentity(disk);
  const log = await expectBoots(disk, firmware, name, IDENTITY_PRINTED);
  const id = printedIdentity(log);
  console.log(`${name}: machine-id ${id.machineId}, ed25519 host key ${id.hostKey}, sshd ${id.sshd}`);
  identities.push({ name, ...id });
  return log;
}

/** A loop device over a new sparse file of `size`, detached after `fn`; returns the backing file. */
async function onLoopDevice(name: string, size: string, fn: (loop: string) => Promise<void>): Promise<string> {
  const backing = path.join(dir, `${name}.img`);
  await execa('truncate', ['-s', size, backing]);
  const loop = (await execa('losetup', ['--find', '--show', backing])).stdout.trim();
  try {
    await fn(loop);
    expect((await leftovers(backing)).filter((l) => !l.startsWith(`loop: ${loop} `))).toEqual([]);
  } finally {
    await execa('losetup', ['--detach', loop]);
  }
  return backing;
}

/** A deploy onto a block device: refused without --yes and without a terminal, then done with --yes. */
async function deployOntoLoop(loop: string, source: string): Promise<void> {
  const refused = await deploy([source, loop]);
  expect(refused.exitCode).toBe(2);
  expect(String(refused.all)).toMatch(/without --yes/);
  const r = await deploy([source, loop, '--yes']);
  expect(r.exitCode, String(r.all)).toBe(0);
  expect((await execa('sgdisk', ['-v', loop])).stdout).toContain('No problems found');
}

/** Partitions of a disk image as sfdisk sees them (bytes). */
async function table(disk: string): Promise<{ start: number; size: number; node: string }[]> {
  const t = JSON.parse((await execa('sfdisk', ['--json', disk])).stdout).partitiontable;
  return t.partitions.map((p: { start: number; size: number; node: string }) => ({
    ...p,
    start: p.start * 512,
    size: p.size * 512,
  }));
}

describe('bareon-deploy of the bootable qcow2 onto a 6 GiB image file', () => {
  it('is equal to the source over its extent, with the backup GPT moved to the end', async () => {
    const target = path.join(dir, 'qcow2.img');
    const r = await deploy([qcow2Manifest(), target, '--size', '6GiB']);
    expect(r.exitCode, String(r.all)).toBe(0);
    const source = path.join(images.gpt, 'debian-bootable.qcow2');
    const virtual = JSON.parse((await execa('qemu-img', ['info', '--output=json', source])).stdout)[
      'virtual-size'
    ] as number;
    // the primary GPT header changes when the backup moves: compare everything after the first MiB, and the boot code before it
    const window = (file: string, driver: string) =>
      `json:${JSON.stringify({ driver: 'raw', offset: 2 ** 20, size: virtual - 2 ** 20, file: { driver, file: { driver: 'file', filename: file } } })}`;
    const cmp = await execa('qemu-img', ['compare', window(source, 'qcow2'), window(target, 'raw')], { reject: false });
    expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
    const head = path.join(dir, 'source-head.raw');
    await execa('qemu-img', [
      'convert',
      '--image-opts',
      `driver=raw,size=${2 ** 20},file.driver=qcow2,file.file.filename=${source}`,
      '-O',
      'raw',
      head,
    ]);
    const bootCode = async (file: string) => {
      const fh = await open(file, 'r');
      try {
        const b = Buffer.alloc(440);
        await fh.read(b, 0, 440, 0);
        return b;
      } finally {
        await fh.close();
      }
    };
    expect((await bootCode(target)).equals(await bootCode(head))).toBe(true);
    const v = await execa('sgdisk', ['-v', target]);
    expect(v.stdout).toContain('No problems found');
    expect(await leftovers(target)).toEqual([]);
  });

  it('with --grow, root fills the disk, and it boots with SeaBIOS', async () => {
    const target = path.join(dir, 'grown.img');
    const r = await deploy([qcow2Manifest(), target, '--size', '6GiB', '--grow']);
    expect(r.exitCode, String(r.all)).toBe(0);
    const root = (await table(target)).at(-1)!;
    expect(root.start + root.size).toBeGreaterThan(6 * GiB - 2 ** 20);
    const blocks = /Block count:\s+(\d+)/.exec(
      (await execa('dumpe2fs', ['-h', `${target}?offset=${root.start}`])).stdout,
    )![1];
    expect(Number(blocks) * 4096).toBe(root.size - (root.size % 4096));
    await bootsWithIdentity(target, 'bios', 'deploy-qcow2-grown');
  });

  // the image's signed shim and GRUB (secure_boot, the default) under OVMF with Microsoft's keys
  // enrolled and Secure Boot enforced; secure-boot.test.ts shows the same firmware refusing it unsigned
  it('onto a loop device, with --yes only, and it boots with OVMF, Secure Boot enforced', async () => {
    const backing = await onLoopDevice('loop-qcow2', '4G', (loop) => deployOntoLoop(loop, qcow2Manifest()));
    const log = await bootsWithIdentity(backing, 'secure-boot-ms', 'loop-qcow2');
    expect(log).toMatch(SECURE_BOOT_ON);
  });

  it('the two deploys boot with different machine-ids and SSH host keys, and sshd runs in both (first-boot hygiene)', () => {
    expect(
      identities.map((i) => i.name),
      'both deploys above booted',
    ).toEqual(['deploy-qcow2-grown', 'loop-qcow2']);
    for (const id of identities)
      expect(id, `${id.name}: identity not printed on the console`).toMatchObject({
        machineId: expect.any(String),
        hostKey: expect.any(String),
        sshd: 'active',
      });
    expect(identities[0].machineId).not.toBe(identities[1].machineId);
    expect(identities[0].hostKey).not.toBe(identities[1].hostKey);
  });
});

describe('bareon-deploy of the bootable rootfs tar.zst onto a layout', () => {
  it('with the default layout, onto a loop device with --yes only, boots', async () => {
    const backing = await onLoopDevice('loop-tar', '4G', (loop) => deployOntoLoop(loop, tarManifest()));
    const log = await expectBoots(backing, 'bios', 'loop-tar');
    expect(log).not.toMatch(/Failed to mount/);
  });

  // one target for two claims, to spare a boot: the xfs + /var layout, written in two runs
  it('with an xfs root and a separate /var, written by --only partitioning then --only filesystems,deploy,fstab,bootloader, boots with /var mounted', async () => {
    const target = path.join(dir, 'xfs.img');
    const layout = ['--layout', path.join(REPO, 'test/fixtures/layouts/xfs-root-var.yaml')];
    const first = await deploy([tarManifest(), target, '--size', '4GiB', ...layout, '--only', 'partitioning']);
    expect(first.exitCode, String(first.all)).toBe(0);
    expect((await execa('sgdisk', ['-v', target])).stdout).toContain('No problems found');
    const [, , rootBefore] = await table(target);
    expect(
      (
        await execa('blkid', ['-p', '-o', 'value', '-s', 'TYPE', `--offset=${rootBefore.start}`, target], {
          reject: false,
        })
      ).stdout,
      'partitioning alone makes no filesystem',
    ).toBe('');
    const second = await deploy([tarManifest(), target, ...layout, '--only', 'filesystems,deploy,fstab,bootloader']);
    expect(second.exitCode, String(second.all)).toBe(0);
    const [, , root, varPart] = await table(target);
    expect((await execa('blkid', ['-p', '-o', 'value', '-s', 'TYPE', `--offset=${root.start}`, target])).stdout).toBe(
      'xfs',
    );
    // /var holds what the tarball put there (dpkg's database), not the root filesystem
    expect(
      (await execa('debugfs', ['-R', 'cat /lib/dpkg/status', `${target}?offset=${varPart.start}`])).stdout,
    ).toMatch(/^Package: /m);
    // deploy's bootloader puts the rootfs's signed shim and GRUB on the ESP with mtools
    const log = await expectBoots(target, 'secure-boot-ms', 'deploy-tar-xfs-two-step');
    expect(log).toMatch(SECURE_BOOT_ON);
    expect(log).not.toMatch(/Failed to mount/);
  });
});
