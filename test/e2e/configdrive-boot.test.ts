import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bareon } from '../helpers/cli.js';
import { deploy } from '../helpers/deploy.js';
import { bootToLogin } from '../helpers/qemu.js';

let dir: string;
let manifest: string;

/** meta-data and user-data for one boot: its own hostname, and a runcmd that prints a marker on the serial console. */
async function seed(name: string): Promise<{ meta: string; user: string; marker: string; hostname: string }> {
  const hostname = `cd-${name}`;
  const marker = `BAREON-CONFIGDRIVE-${name.toUpperCase()}-OK`;
  const meta = path.join(dir, `${name}.meta-data`);
  const user = path.join(dir, `${name}.user-data`);
  await writeFile(meta, `instance-id: iid-${name}\nlocal-hostname: ${hostname}\n`);
  await writeFile(user, `#cloud-config\nruncmd:\n  - echo ${marker} > /dev/ttyS0\n`);
  return { meta, user, marker, hostname };
}

/** Boots `disk` and expects cloud-init to have applied the drive: the hostname at the login prompt and the marker. */
async function bootsWith(disk: string, s: { marker: string; hostname: string }, name: string): Promise<void> {
  const boot = await bootToLogin(disk, { firmware: 'bios', name, until: [new RegExp(`${s.hostname} login:`), new RegExp(s.marker)], timeoutMs: 300_000 });
  expect(boot.reachedLogin, `no login prompt; serial log: ${boot.keptLog}`).toBe(true);
  expect(boot.log, `serial log: ${boot.keptLog}`).toMatch(new RegExp(`${s.hostname} login:`));
  expect(boot.log, `serial log: ${boot.keptLog}`).toMatch(new RegExp(s.marker));
  console.log(`${name}: hostname and marker after ${boot.seconds.toFixed(1)} s`);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join('/var/tmp', 'bareon-e2e-configdrive-'));
  manifest = path.join(inject('bootableImages').cloud, 'debian-cloud.manifest.json');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config drives applied by cloud-init at first boot (TCG)', () => {
  for (const [flavor, fs] of [['nocloud', 'vfat'], ['config-2', 'vfat'], ['nocloud', 'iso9660']] as const) {
    it(`bareon-deploy --user-data --meta-data, ${flavor} on ${fs}`, async () => {
      const name = `${flavor.replace('-', '')}-${fs}`;
      const s = await seed(name);
      const disk = path.join(dir, `${name}.img`);
      const r = await deploy([manifest, disk, '--size', '4GiB', '--grow', '--user-data', s.user, '--meta-data', s.meta, '--config-drive-flavor', flavor, '--config-drive-fs', fs]);
      expect(r.exitCode, String(r.all)).toBe(0);
      await bootsWith(disk, s, name);
      await rm(disk);
    });
  }

  it('bareon run configdrive adds the drive to a deployed disk after the fact', async () => {
    const s = await seed('alone');
    const disk = path.join(dir, 'alone.img');
    const r = await deploy([manifest, disk, '--size', '4GiB']);
    expect(r.exitCode, String(r.all)).toBe(0);
    const added = await bareon('bareon', ['run', 'configdrive', '--target', disk, '--user-data', s.user, '--meta-data', s.meta], { stdin: 'ignore' });
    expect(added.exitCode, String(added.all)).toBe(0);
    await bootsWith(disk, s, 'alone');
    await rm(disk);
  });
});
