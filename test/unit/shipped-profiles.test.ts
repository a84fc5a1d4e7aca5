import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';
import { planSteps } from '../../builders/common/steps.js';
import { PACKAGE_MANAGERS } from '../../src/build/package-manager.js';
import { stepKey } from '../../src/build/step-cache.js';
import { ProfileSchema } from '../../src/objects/profile.js';

describe('the shipped profiles and layouts', () => {
  it('all validate', async () => {
    const files = [
      ...(await readdir(path.join(REPO, 'profiles')))
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => path.join(REPO, 'profiles', f)),
      ...(await readdir(path.join(REPO, 'profiles/layouts'))).map((f) => path.join(REPO, 'profiles/layouts', f)),
    ];
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) {
      const r = await bareon('bareon', ['validate', file]);
      expect(r.exitCode, `${file}: ${r.stderr}`).toBe(0);
    }
  });

  it('plan a dry run without touching Docker', async () => {
    const r = await bareon('build', [path.join(REPO, 'profiles/web-server.yaml'), '--dry-run'], {
      env: { DOCKER_HOST: 'unix:///nonexistent.sock' },
    });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(r.stdout).toContain('1. bareon.builders/debian');
    expect(r.stdout).toContain('bareon.exporters/tar.gz');
  });

  it('plan a disk image build, whose size is not known before the root filesystem exists, and --outputs picks the outputs', async () => {
    const env = { DOCKER_HOST: 'unix:///nonexistent.sock' };
    const r = await bareon('build', [path.join(REPO, 'profiles/debian-bootable.yaml'), '--dry-run'], { env });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(r.stdout).toContain('root: new gpt table on an image of the root filesystem’s size plus headroom');
    expect(r.stdout).toMatch(/3\. linux +size +remaining +ext4 "root" on \//);
    const agent = await bareon(
      'build',
      [path.join(REPO, 'profiles/deploy-agent.yaml'), '--outputs', 'qcow2,netboot', '--dry-run'],
      { env },
    );
    expect(agent.exitCode, String(agent.stderr)).toBe(0);
    expect(agent.stdout).toMatch(/2\. bareon\.exporters\/qcow2 .*\n {2}3\. bareon\.exporters\/netboot /);
    expect(agent.stdout).not.toContain('bareon.exporters/tar.zst');
    const both = await bareon(
      'build',
      [path.join(REPO, 'profiles/debian-cloud.yaml'), '--outputs', 'qcow2', '--target', '/tmp/x.img', '--dry-run'],
      { env },
    );
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('--outputs and --target');
  });

  it('plan a build to disk with a config drive: the deploy chain, the reserved partition, nothing created', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-dry-'));
    await writeFile(path.join(dir, 'meta-data'), 'instance-id: dry\n');
    const disk = path.join(dir, 'disk.img');
    const args = [
      path.join(REPO, 'profiles/debian-cloud.yaml'),
      '--target',
      disk,
      '--size',
      '4GiB',
      '--meta-data',
      path.join(dir, 'meta-data'),
      '-o',
      path.join(dir, 'out'),
      '--dry-run',
    ];
    const r = await bareon('build', args, { env: { DOCKER_HOST: 'unix:///nonexistent.sock' } });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    for (const step of [
      'bareon.builders/debian',
      'bareon.actions/partitioning',
      'bareon.actions/deploy',
      'bareon.actions/bootloader',
      'bareon.actions/configdrive',
      'bareon.deployers/rootfs-tar',
    ])
      expect(r.stdout).toContain(step);
    expect(r.stdout).toMatch(/4\. configdrive offset +\d+ +size +64\.0 MiB/);
    expect(r.stdout).not.toContain('bareon.exporters/');
    await expect(stat(disk)).rejects.toThrow();
    await expect(stat(path.join(dir, 'out'))).rejects.toThrow();
  });
});

describe('build steps from a profile', () => {
  it('writes extra apt repositories as deb822 sources with their keys, and pulls in implied packages', async () => {
    const profile = ProfileSchema.parse({
      name: 'r',
      base: { distro: 'debian', suite: 'bookworm' },
      repos: [
        {
          name: 'vendor',
          uri: 'https://apt.example.com/debian',
          suites: ['bookworm'],
          key: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n…',
        },
      ],
      packages: ['vendor-agent'],
      users: [{ name: 'ops', sudo: true, ssh_authorized_keys: ['ssh-ed25519 AAAA ops'] }],
      timezone: 'Europe/Berlin',
      locale: 'de_DE.UTF-8',
    });
    const { steps, digests } = await planSteps(profile, {
      profileDir: REPO,
      pm: PACKAGE_MANAGERS.apt,
      distro: 'debian',
    });
    expect(steps.map((s) => s.kind)).toEqual(['prepare', 'repos', 'packages', 'users', 'system', 'finalize']);
    const repos = steps[1];
    expect(repos.archive!.map((e) => e.path)).toEqual([
      'etc/apt/keyrings/bareon-vendor.asc',
      'etc/apt/sources.list.d/bareon-vendor.sources',
    ]);
    expect(repos.archive![1].content!.toString()).toBe(
      'Types: deb\nURIs: https://apt.example.com/debian\nSuites: bookworm\nComponents: main\nSigned-By: /etc/apt/keyrings/bareon-vendor.asc\n',
    );
    expect(digests.get(1)).toMatch(/^[0-9a-f]{64}$/);
    expect((steps[2].options as { packages: string[] }).packages).toEqual([
      'sudo',
      'openssh-server',
      'tzdata',
      'locales',
      'vendor-agent',
    ]);
    expect(steps[4].script).toContain('locale-gen');
  });

  it('gives a bootable profile a boot layer that profiles differing only in packages share, and builds each initramfs once', async () => {
    const bootable = (packages: string[]) =>
      ProfileSchema.parse({ name: 'b', base: { distro: 'debian', suite: 'bookworm' }, bootable: true, packages });
    const plan = async (packages: string[]) =>
      (await planSteps(bootable(packages), { profileDir: REPO, pm: PACKAGE_MANAGERS.apt, distro: 'debian' })).steps;
    const [first, second] = [await plan(['openssh-server', 'less']), await plan(['openssh-server', 'udev'])];
    // the signed boot chain (secure_boot, on by default) joins the profile's own packages, not the shared layer
    expect(first.map((s) => s.title)).toEqual(['prepare', 'packages: boot (13)', 'packages (4)', 'finalize']);
    expect((first[2].options as { packages: string[] }).packages.slice(0, 2)).toEqual([
      'shim-signed',
      'grub-efi-amd64-signed',
    ]);
    const key = (steps: typeof first, i: number) => stepKey(stepKey('base', steps[0]), steps[i]);
    expect(key(first, 1)).toBe(key(second, 1));
    expect(key(first, 2)).not.toBe(key(second, 2));
    // udev is in the boot layer already
    expect((second[2].options as { packages: string[] }).packages).toEqual([
      'shim-signed',
      'grub-efi-amd64-signed',
      'openssh-server',
    ]);
    // secure_boot: false keeps GRUB unsigned and installs no shim
    const unsigned = ProfileSchema.parse({
      name: 'u',
      base: { distro: 'debian', suite: 'bookworm' },
      bootable: true,
      secure_boot: false,
      packages: ['less'],
    });
    const steps = (await planSteps(unsigned, { profileDir: REPO, pm: PACKAGE_MANAGERS.apt, distro: 'debian' })).steps;
    expect((steps[2].options as { packages: string[] }).packages).toEqual(['less']);
    for (const step of [first[1], first[2]]) {
      expect(step.script).toMatch(/^export INITRD=No; \{ .*apt-get install .*; \} \|\| exit 1$/m);
      expect(step.script).toContain('update-initramfs -c -k "$v"');
    }
    // a container profile keeps one package step, without the initramfs handling
    const plain = (
      await planSteps(
        ProfileSchema.parse({ name: 'p', base: { distro: 'debian', suite: 'bookworm' }, packages: ['curl'] }),
        { profileDir: REPO, pm: PACKAGE_MANAGERS.apt, distro: 'debian' },
      )
    ).steps;
    expect(plain.filter((s) => s.kind === 'packages').map((s) => s.script)).toEqual([
      PACKAGE_MANAGERS.apt.install(['curl']),
    ]);
  });
});
