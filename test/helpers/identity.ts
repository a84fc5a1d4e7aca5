import { execa } from 'execa';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

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

const LINUX_ROOT_X86_64 = '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709';

/** What a boot of an instrumented disk must print before it counts: the three identity lines. */
export const IDENTITY_PRINTED = [/MACHINE-ID \S+/, /HOSTKEY \d+ SHA256:\S+/, /SSHD \S+/];

/** Adds the identity unit to the root filesystem of a deployed GPT disk image (through an offset loop device). */
export async function instrumentIdentity(disk: string): Promise<void> {
  const table = JSON.parse((await execa('sfdisk', ['--json', disk])).stdout).partitiontable;
  const root = table.partitions.find((p: { type: string }) => p.type.toUpperCase() === LINUX_ROOT_X86_64);
  if (!root) throw new Error(`${disk}: no x86-64 root partition to instrument`);
  const loop = (
    await execa('losetup', [
      '--find',
      '--show',
      '--offset',
      String(root.start * 512),
      '--sizelimit',
      String(root.size * 512),
      disk,
    ])
  ).stdout.trim();
  const mnt = await mkdtemp(path.join(tmpdir(), 'bareon-identity-'));
  try {
    await execa('mount', [loop, mnt]);
    try {
      await writeFile(path.join(mnt, 'etc/systemd/system/bareon-test-ids.service'), IDS_UNIT);
      await symlink(
        '/etc/systemd/system/bareon-test-ids.service',
        path.join(mnt, 'etc/systemd/system/multi-user.target.wants/bareon-test-ids.service'),
      );
    } finally {
      await execa('umount', [mnt]);
    }
  } finally {
    await execa('losetup', ['--detach', loop]);
    await rm(mnt, { recursive: true, force: true });
  }
}

/** The identity an instrumented boot printed, or undefined where a line is missing. */
export function printedIdentity(log: string): { machineId?: string; hostKey?: string; sshd?: string } {
  return {
    machineId: /MACHINE-ID ([0-9a-f]{32})/.exec(log)?.[1],
    hostKey: /HOSTKEY (\d+ SHA256:\S+)/.exec(log)?.[1],
    sshd: /SSHD (\S+)/.exec(log)?.[1],
  };
}
