import { execa } from 'execa';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hygieneItem } from '../../src/rootfs/hygiene.js';
import { deploy } from '../helpers/deploy.js';
import { bootToLogin } from '../helpers/qemu.js';

let dir: string;

/**
 * A unit that prints the machine-id, the ed25519 host key fingerprint and whether sshd runs on the
 * serial console. It runs before the serial getty: agetty hangs up ttyS0 when it starts, and what a
 * unit writes there afterwards is lost.
 */
const IDS_UNIT = `[Unit]
Description=print this machine's identity (bareon test)
After=ssh.service
Wants=ssh.service
Before=serial-getty@ttyS0.service getty.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "MACHINE-ID $(cat /etc/machine-id)"; echo "HOSTKEY $(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)"; echo "SSHD $(systemctl is-active ssh)"'
StandardOutput=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
`;

/** Adds IDS_UNIT to the root filesystem of a deployed disk (mounted through an offset loop device). */
async function instrument(disk: string): Promise<void> {
  const table = JSON.parse((await execa('sfdisk', ['--json', disk])).stdout).partitiontable;
  const root = table.partitions.find((p: { name?: string; type: string }) => p.type.toUpperCase() === '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709');
  const loop = (await execa('losetup', ['--find', '--show', '--offset', String(root.start * 512), '--sizelimit', String(root.size * 512), disk])).stdout.trim();
  const mnt = await mkdtemp(path.join(dir, 'mnt-'));
  try {
    await execa('mount', [loop, mnt]);
    try {
      await writeFile(path.join(mnt, 'etc/systemd/system/bareon-test-ids.service'), IDS_UNIT);
      await symlink('/etc/systemd/system/bareon-test-ids.service', path.join(mnt, 'etc/systemd/system/multi-user.target.wants/bareon-test-ids.service'));
    } finally {
      await execa('umount', [mnt]);
    }
  } finally {
    await execa('losetup', ['--detach', loop]);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join('/var/tmp', 'bareon-e2e-hygiene-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('first-boot hygiene', () => {
  it('the bootable rootfs artifact carries no host keys, machine-id, seed, apt state, build logs or backups', async () => {
    const tarFile = path.join(inject('bootableImages').tar, 'debian-bootable-tar.tar.zst');
    const listing = (await execa('tar', ['--zstd', '-tvf', tarFile], { maxBuffer: 1 << 28 })).stdout.split('\n');
    const names = listing.map((l) => l.split(/\s+/).slice(5).join(' ').replace(/ -> .*$/, ''));
    expect(names.filter((n) => hygieneItem(n))).toEqual([]);
    expect(names).toContain('etc/systemd/system/ssh.service.d/bareon-host-keys.conf');
    expect(listing.find((l) => l.endsWith(' etc/machine-id'))).toMatch(/^-r--r--r-- root\/root\s+0 /);
  });

  it('two deploys of the bootable image boot with different machine-ids and SSH host keys, and sshd runs', async () => {
    const manifest = path.join(inject('bootableImages').gpt, 'debian-bootable.manifest.json');
    const seen: { machineId: string; hostKey: string }[] = [];
    for (const name of ['first', 'second']) {
      const disk = path.join(dir, `${name}.img`);
      const r = await deploy([manifest, disk, '--size', '3GiB']);
      expect(r.exitCode, String(r.all)).toBe(0);
      await instrument(disk);
      const boot = await bootToLogin(disk, { firmware: 'bios', name: `hygiene-${name}`, until: [/MACHINE-ID \S+/, /HOSTKEY \d+ SHA256:\S+/, /SSHD \S+/], timeoutMs: 240_000 });
      expect(boot.reachedLogin, `serial log: ${boot.keptLog}`).toBe(true);
      const machineId = /MACHINE-ID ([0-9a-f]{32})/.exec(boot.log)?.[1];
      const hostKey = /HOSTKEY (\d+ SHA256:\S+)/.exec(boot.log)?.[1];
      expect(machineId, `serial log: ${boot.keptLog}`).toBeDefined();
      expect(hostKey, `serial log: ${boot.keptLog}`).toBeDefined();
      expect(boot.log).toMatch(/SSHD active/);
      console.log(`${name} deploy: machine-id ${machineId}, ed25519 host key ${hostKey}`);
      seen.push({ machineId: machineId!, hostKey: hostKey! });
      await rm(disk);
    }
    expect(seen[0].machineId).not.toBe(seen[1].machineId);
    expect(seen[0].hostKey).not.toBe(seen[1].hostKey);
  });
});
