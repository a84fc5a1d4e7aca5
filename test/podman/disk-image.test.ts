import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';
import { checkDiskFiles, checkFilesystems } from '../helpers/disk-checks.js';

// The tier's setup points DOCKER_HOST at Podman's socket and bootstraps the base through it. The
// same checks as the Docker tier's disk-image test. No boot here: reproducible.test.ts shows that a
// root filesystem exported through Podman is byte-identical to Docker's, whose images the e2e tier boots.
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
});
