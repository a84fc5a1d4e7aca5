import { execa } from 'execa';
import { copyFile, mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { runVm } from '../helpers/qemu.js';

const GiB = 2 ** 30;

/** A job disk: an ext4 filesystem labelled bareon-job holding job.yaml and what it names. */
async function jobDisk(dir: string, files: Record<string, string>, job: object): Promise<string> {
  const content = path.join(dir, 'job');
  await execa('mkdir', ['-p', content]);
  let bytes = 0;
  for (const [name, from] of Object.entries(files)) {
    await copyFile(from, path.join(content, name));
    bytes += (await stat(from)).size;
  }
  await writeFile(path.join(content, 'job.yaml'), JSON.stringify(job, null, 2));
  const img = path.join(dir, 'job.img');
  await execa('mkfs.ext4', ['-q', '-F', '-L', 'bareon-job', '-d', content, img, `${Math.ceil(bytes / 2 ** 20) + 64}M`]);
  await rm(content, { recursive: true });
  return img;
}

async function blankDisk(file: string, size: number): Promise<string> {
  await writeFile(file, '');
  await truncate(file, size);
  return file;
}

const lastLine = (log: string) => /bareon-job: (ok|failed[^\r\n]*)/.exec(log)?.[0];

describe('the deploy agent in QEMU (TCG)', () => {
  let dir: string;
  const agent = () => inject('agentImage');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bareon-agent-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('deploys a rootfs onto RAID 1 over two disks with LVM on top; the disks boot alone, and with one member gone', async () => {
    const { qcow2, tar, tarSha256 } = agent();
    const job = await jobDisk(dir, { 'rootfs.tar.zst': tar, 'layout.yaml': path.join(REPO, 'test/fixtures/layouts/raid1-lvm.yaml') }, {
      source: 'rootfs.tar.zst', checksum: `sha256:${tarSha256}`, layout: 'layout.yaml', when_done: 'poweroff',
    });
    const a = await blankDisk(path.join(dir, 'disk-a.raw'), 4 * GiB);
    const b = await blankDisk(path.join(dir, 'disk-b.raw'), 4 * GiB);
    const run = await runVm({
      name: 'agent-raid1-lvm', firmware: 'bios', timeoutMs: 20 * 60_000, waitForExit: true, until: /bareon-job: (ok|failed)/,
      disks: [{ file: qcow2, snapshot: true }, { file: job, serial: 'job', snapshot: true }, { file: a, serial: 'disk-a' }, { file: b, serial: 'disk-b' }],
    });
    console.log(`agent: RAID 1 + LVM job finished in ${run.seconds.toFixed(0)} s: ${lastLine(run.log)}`);
    expect(lastLine(run.log), run.keptLog).toBe('bareon-job: ok');
    expect(run.exited, 'the agent powers off when done').toBe(true);
    // JSON events of bareon-deploy on the serial console
    expect(run.log).toMatch(/"event":"finished","task":"raid/);
    expect(run.log).toMatch(/"event":"finished","task":"lvm/);

    const both = await runVm({ name: 'raid1-lvm-boot', firmware: 'bios', timeoutMs: 6 * 60_000, until: /login:/, disks: [{ file: a, snapshot: true }, { file: b, snapshot: true }] });
    console.log(`RAID 1 + LVM target: login after ${both.seconds.toFixed(0)} s (BIOS, both disks)`);
    expect(both.matched, both.keptLog).toBe(true);
    const degraded = await runVm({ name: 'raid1-lvm-degraded', firmware: 'uefi', timeoutMs: 8 * 60_000, until: /login:/, disks: [{ file: b, snapshot: true }] });
    console.log(`RAID 1 + LVM target: login after ${degraded.seconds.toFixed(0)} s (UEFI, disk b alone)`);
    expect(degraded.matched, degraded.keptLog).toBe(true);
  });
});
