import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';
import { checkDiskFiles, checkFilesystems } from '../helpers/disk-checks.js';
import { bootToLogin } from '../helpers/qemu.js';

// The tier's setup points DOCKER_HOST at Podman's socket and bootstraps the base through it.
describe('profiles/debian-bootable.yaml built through Podman', () => {
  let out: string;

  beforeAll(async () => {
    expect(process.env.DOCKER_HOST).toMatch(/podman\.sock$/);
    out = path.join(await mkdtemp(path.join(tmpdir(), 'bareon-podman-')), 'out');
    const r = await bareon('build', [path.join(REPO, 'profiles/debian-bootable.yaml'), '-o', out]);
    expect(r.exitCode, String(r.all).slice(-3000)).toBe(0);
  });

  it('writes a qcow2 and a raw image that pass qemu-img check and sgdisk -v', async () => {
    await checkDiskFiles(out, 'debian-bootable');
  });

  it('has clean filesystems with the UUIDs the manifest records', async () => {
    await checkFilesystems(out, 'debian-bootable');
  });

  it('boots to a login prompt under QEMU (UEFI)', async () => {
    const r = await bootToLogin(path.join(out, 'debian-bootable.qcow2'), { firmware: 'uefi', name: 'podman-gpt-qcow2', timeoutMs: 240_000 });
    console.log(`built through Podman, OVMF: login after ${r.seconds.toFixed(1)} s`);
    expect(r.reachedLogin, `no login prompt within 240 s; serial log kept at ${r.keptLog}`).toBe(true);
    expect(r.log).toContain('bareon-vm login:');
  });
});
