import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO } from '../helpers/cli.js';
import { blankDisk, sha256File } from '../helpers/deploy.js';
import { serveFiles } from '../helpers/http-files.js';
import { runVm } from '../helpers/qemu.js';

const GiB = 2 ** 30;
/** An agent job, and the boots that check its result, under TCG on a loaded machine. */
const JOB_TIMEOUT = 40 * 60_000;

/** A job disk: an ext4 filesystem labelled bareon-job holding job.yaml and what it names. */
async function jobDisk(dir: string, files: Record<string, string>, job: object): Promise<string> {
  await mkdir(dir, { recursive: true });
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

  it(
    'deploys a rootfs onto RAID 1 over two disks with LVM on top, and the disks boot alone',
    async () => {
      const { qcow2, tar, tarSha256 } = agent();
      const job = await jobDisk(
        dir,
        { 'rootfs.tar.zst': tar, 'layout.yaml': path.join(REPO, 'test/fixtures/layouts/raid1-lvm.yaml') },
        {
          source: 'rootfs.tar.zst',
          checksum: `sha256:${tarSha256}`,
          layout: 'layout.yaml',
          when_done: 'poweroff',
        },
      );
      const a = await blankDisk(path.join(dir, 'disk-a.raw'), 4 * GiB);
      const b = await blankDisk(path.join(dir, 'disk-b.raw'), 4 * GiB);
      const run = await runVm({
        name: 'agent-raid1-lvm',
        firmware: 'bios',
        timeoutMs: 20 * 60_000,
        waitForExit: true,
        until: /bareon-job: (ok|failed)/,
        disks: [
          { file: qcow2, snapshot: true },
          { file: job, serial: 'job', snapshot: true },
          { file: a, serial: 'disk-a' },
          { file: b, serial: 'disk-b' },
        ],
      });
      console.log(`agent: RAID 1 + LVM job finished in ${run.seconds.toFixed(0)} s: ${lastLine(run.log)}`);
      expect(lastLine(run.log), run.report).toBe('bareon-job: ok');
      expect(run.exited, 'the agent powers off when done').toBe(true);
      // JSON events of bareon-deploy on the serial console
      expect(run.log).toMatch(/"event":"finished","task":"raid/);
      expect(run.log).toMatch(/"event":"finished","task":"lvm/);

      const both = await runVm({
        name: 'raid1-lvm-boot',
        firmware: 'bios',
        timeoutMs: 6 * 60_000,
        until: /login:/,
        disks: [
          { file: a, snapshot: true },
          { file: b, snapshot: true },
        ],
      });
      console.log(`RAID 1 + LVM target: login after ${both.seconds.toFixed(0)} s (BIOS, both disks)`);
      expect(both.matched, both.report).toBe(true);
    },
    JOB_TIMEOUT,
  );

  it(
    'redeploys over that result keeping /data, whose file survives; the mirror boots with one member gone',
    async () => {
      const { qcow2, tar, tarSha256 } = agent();
      const a = path.join(dir, 'disk-a.raw');
      const b = path.join(dir, 'disk-b.raw');
      const dataDir = path.join(dir, 'data-mount');
      await execa('mkdir', ['-p', dataDir]);
      const withData = async (fn: () => Promise<void>) => {
        const table = JSON.parse((await execa('sfdisk', ['--json', a])).stdout) as {
          partitiontable: { partitions: { start: number; size: number }[] };
        };
        const data = table.partitiontable.partitions[3];
        await execa('mount', [
          '-o',
          `loop,offset=${data.start * 512},sizelimit=${data.size * 512}`,
          '-t',
          'ext4',
          a,
          dataDir,
        ]);
        try {
          await fn();
        } finally {
          await execa('umount', [dataDir]);
        }
      };
      await withData(() => writeFile(path.join(dataDir, 'survivor.txt'), 'kept across a redeploy\n'));
      const job = await jobDisk(
        path.join(dir, 'redeploy'),
        { 'rootfs.tar.zst': tar, 'layout.yaml': path.join(REPO, 'test/fixtures/layouts/raid1-lvm.yaml') },
        {
          source: 'rootfs.tar.zst',
          checksum: `sha256:${tarSha256}`,
          layout: 'layout.yaml',
          keep: ['data'],
          when_done: 'poweroff',
        },
      );
      const run = await runVm({
        name: 'agent-redeploy-keep',
        firmware: 'uefi',
        timeoutMs: 20 * 60_000,
        until: /bareon-job: (ok|failed)/,
        disks: [
          { file: qcow2, snapshot: true },
          { file: job, serial: 'job', snapshot: true },
          { file: a, serial: 'disk-a' },
          { file: b, serial: 'disk-b' },
        ],
      });
      console.log(`agent: redeploy keeping /data finished in ${run.seconds.toFixed(0)} s: ${lastLine(run.log)}`);
      expect(lastLine(run.log), run.report).toBe('bareon-job: ok');
      expect(run.log).toMatch(/released old (md arrays|volume groups)/);
      await withData(async () =>
        expect(await readFile(path.join(dataDir, 'survivor.txt'), 'utf8')).toBe('kept across a redeploy\n'),
      );
      // the mirror with a member gone, booted from the other one's ESP
      const degraded = await runVm({
        name: 'raid1-lvm-degraded',
        firmware: 'uefi',
        timeoutMs: 8 * 60_000,
        until: /login:/,
        disks: [{ file: b, snapshot: true }],
      });
      console.log(
        `RAID 1 + LVM target after the redeploy: login after ${degraded.seconds.toFixed(0)} s (UEFI, disk b alone)`,
      );
      expect(degraded.matched, degraded.report).toBe(true);
    },
    JOB_TIMEOUT,
  );

  it(
    'boots over the network, takes its job from bareon.job=URL and streams a qcow2 over HTTP onto the disk its serial names; the twin stays as it was, and the result boots',
    async () => {
      const { qcow2, qcow2Sha256, vmlinuz, initramfs } = agent();
      const c = await blankDisk(path.join(dir, 'disk-c.raw'), 2 * GiB);
      const d = await blankDisk(path.join(dir, 'disk-d.raw'), 2 * GiB);
      const fh = await open(d, 'r+');
      await fh.write(randomBytes(8 * 2 ** 20), 0, 8 * 2 ** 20, 0);
      await fh.write(randomBytes(2 ** 20), 0, 2 ** 20, GiB);
      await fh.close();
      const twinBefore = await sha256File(d);
      const site = await serveFiles({
        '/qcow2/job.yaml': JSON.stringify({
          source: 'disk.qcow2',
          checksum: `sha256:${qcow2Sha256}`,
          target_hints: { serial: 'disk-c' },
          grow: true,
          when_done: 'poweroff',
        }),
        '/qcow2/disk.qcow2': { file: qcow2 },
      });
      try {
        const netAgent = (job: string) => ({
          kernel: vmlinuz,
          initrd: initramfs,
          append: `console=ttyS0,115200n8 bareon.agent bareon.job=http://10.0.2.100${job}`,
        });
        const disks = [
          { file: c, serial: 'disk-c' },
          { file: d, serial: 'disk-d' },
        ];
        const run = await runVm({
          name: 'agent-netboot-qcow2',
          firmware: 'bios',
          timeoutMs: 15 * 60_000,
          until: /bareon-job: (ok|failed)/,
          disks,
          netboot: netAgent('/qcow2/job.yaml'),
          httpPort: site.port,
          memoryMiB: 6144,
        });
        console.log(
          `agent (network boot): qcow2 by serial over HTTP finished in ${run.seconds.toFixed(0)} s: ${lastLine(run.log)}`,
        );
        expect(lastLine(run.log), run.report).toBe('bareon-job: ok');
        expect(site.requests[0]).toBe('/qcow2/job.yaml');
        expect(site.requests).toContain('/qcow2/disk.qcow2');
        expect(await sha256File(d), 'the twin disk is untouched').toBe(twinBefore);
        const boot = await runVm({
          name: 'qcow2-hint-boot',
          firmware: 'uefi',
          timeoutMs: 6 * 60_000,
          until: /login:/,
          disks: [{ file: c, snapshot: true }],
        });
        expect(boot.matched, boot.report).toBe(true);

        // a hint that matches two disks: an error, and neither disk changes (this agent boots from its
        // disk, with the job on a disk of its own: the network boot is proven above; its source is
        // checked first, so it is on the job disk, as this VM has no network). Two new disks, as c
        // now holds a copy of the agent's own filesystems, with the same UUIDs as the disk it boots from.
        const twins = [
          await blankDisk(path.join(dir, 'disk-e.raw'), 2 * GiB),
          await blankDisk(path.join(dir, 'disk-f.raw'), 2 * GiB),
        ];
        for (const twin of twins) {
          const fh = await open(twin, 'r+');
          await fh.write(randomBytes(2 ** 20), 0, 2 ** 20, 0);
          await fh.close();
        }
        const twinsBefore = await Promise.all(twins.map(sha256File));
        const tiny = path.join(dir, 'tiny.qcow2');
        await execa('qemu-img', ['create', '-q', '-f', 'qcow2', tiny, '16M']);
        const twoJob = await jobDisk(
          path.join(dir, 'two'),
          { 'tiny.qcow2': tiny },
          {
            source: 'tiny.qcow2',
            checksum: `sha256:${await sha256File(tiny)}`,
            target_hints: { size: '== 2GiB' },
            when_done: 'poweroff',
          },
        );
        const two = await runVm({
          name: 'agent-two-match',
          firmware: 'bios',
          timeoutMs: 10 * 60_000,
          until: /bareon-job: (ok|failed)/,
          disks: [
            { file: qcow2, snapshot: true },
            { file: twoJob, serial: 'job', snapshot: true },
            ...twins.map((file, i) => ({ file, serial: `twin-${i}` })),
          ],
        });
        expect(lastLine(two.log), two.report).toMatch(
          /^bareon-job: failed: --target-hint: 2 disks match size="== 2GiB"/,
        );
        expect(await Promise.all(twins.map(sha256File))).toEqual(twinsBefore);
      } finally {
        await site.close();
      }
    },
    JOB_TIMEOUT,
  );
});
