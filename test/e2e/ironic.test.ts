import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { REPO } from '../helpers/cli.js';
import { blankDisk, sha256File } from '../helpers/deploy.js';
import { IRONIC_PORT, IronicSandbox, SITE } from '../helpers/ironic.js';
import { runVm, type VmDisk, type VmRun } from '../helpers/qemu.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const TEST_TIMEOUT = 40 * 60_000;
/** Where each agent's API listens in the guest; Ironic dials the advertised address, which QEMU forwards here. */
const AGENT_PORT = 9999;

/** Random bytes at the start and at 1 GiB: a disk whose every change a hash would show. */
async function scribble(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  await fh.write(randomBytes(8 * 2 ** 20), 0, 8 * 2 ** 20, 0);
  await fh.write(randomBytes(2 ** 20), 0, 2 ** 20, GiB);
  await fh.close();
}

/** The partition table type blkid finds on an image file ('' when there is none). */
async function tableType(file: string): Promise<string> {
  const r = await execa('blkid', ['-p', '-o', 'value', '-s', 'PTTYPE', file], { reject: false });
  return r.stdout.trim();
}

/** The filesystem type blkid finds at `offset` of an image file ('' when there is none). */
async function signatureAt(file: string, offset: number): Promise<string> {
  const r = await execa('blkid', ['-p', '-O', String(offset), '-o', 'value', '-s', 'TYPE', file], { reject: false });
  return r.stdout.trim();
}

describe("bareon's agent as the deploy ramdisk of a stock Ironic (TCG)", () => {
  let sandbox: IronicSandbox;
  let dir: string;
  const agent = () => inject('agentImage');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bareon-ironic-e2e-'));
    sandbox = await IronicSandbox.start(inject('ironicImage').image, 'bareon-ironic-e2e');
  });
  afterAll(async () => {
    await sandbox?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Boots the agent over the network as Ironic's ramdisk would be (fake boot: the test plays the
   * PXE server), with only what Ironic's PXE boot passes on its command line (ipa-api-url…; no
   * setting of bareon's): Ironic's API and the image server at 10.0.2.100, and its own API
   * advertised at `advertise`, a loopback address of the namespace where QEMU forwards a port to
   * the guest. Loopback, because QEMU shows the guest a caller on loopback as its gateway
   * (10.0.2.2); any other caller keeps its own address, and with restrict=on QEMU drops the guest's
   * answers to addresses outside 10.0.2.0/24, while nobody answers ARP for one inside it. Runs until
   * the agent powers off (Ironic's standby.power_off), the deadline, or `signal`.
   */
  async function bootAgent(opts: {
    name: string;
    mac: string;
    advertise: string;
    disks: VmDisk[];
    signal?: AbortSignal;
  }): Promise<VmRun> {
    const { vmlinuz, initramfs } = agent();
    return runVm({
      name: opts.name,
      firmware: 'bios',
      netns: sandbox.netns,
      mac: opts.mac,
      netboot: {
        kernel: vmlinuz,
        initrd: initramfs,
        append: `console=ttyS0,115200n8 ipa-api-url=http://${SITE}:${IRONIC_PORT} ipa-advertise-host=${opts.advertise} ipa-advertise-port=${AGENT_PORT}`,
      },
      forwards: [
        { guest: `${SITE}:${IRONIC_PORT}`, to: IRONIC_PORT },
        { guest: `${SITE}:80`, to: path.join(sandbox.dir, 'site.sock') },
      ],
      hostForwards: [`tcp:${opts.advertise}:${AGENT_PORT}-:${AGENT_PORT}`],
      disks: opts.disks,
      until: /"ironic: (poweroff|reboot) asked"/,
      waitForExit: true,
      timeoutMs: 20 * 60_000,
      memoryMiB: 4096,
      signal: opts.signal,
    });
  }

  /** Moves a node to `active` (the body adds configdrive or deploy_steps) and waits for Ironic to wait for its agent. */
  async function provision(uuid: string, body: Record<string, unknown>): Promise<void> {
    await sandbox.call('PUT', `/v1/nodes/${uuid}/states/provision`, { target: 'active', ...body });
    const node = await sandbox.waitFor(uuid, ['wait call-back', 'deploy failed'], 120_000);
    expect(node.provision_state, `${node.last_error}\n${await sandbox.logs()}`).toBe('wait call-back');
  }

  /**
   * Boots the agent for a node and follows the node to `active` or `deploy failed`; on failure the
   * agent stays up (Ironic's power is fake), so the guest is stopped once Ironic has decided.
   */
  async function deployWithAgent(uuid: string, ends: string[], vm: Omit<Parameters<typeof bootAgent>[0], 'signal'>) {
    const started = Date.now();
    const stop = new AbortController();
    const run = bootAgent({ ...vm, signal: stop.signal });
    const node = await sandbox.waitFor(uuid, ends, 20 * 60_000).catch(async (err: unknown) => {
      // no guest outlives a failed test
      stop.abort();
      await run;
      throw err;
    });
    const seconds = (Date.now() - started) / 1000;
    // an agent that Ironic powered off through standby.power_off exits; one that Ironic left up
    // (after a failure or cleaning, with fake power) is stopped
    const done =
      node.provision_state === 'active'
        ? await Promise.race([run, new Promise<undefined>((r) => setTimeout(r, 30_000))])
        : undefined;
    if (!done) stop.abort();
    return { node, seconds, run: done ?? (await run) };
  }

  it(
    "direct: writes the qcow2 Ironic names onto the disk the serial hint chooses, with its config drive, and reaches active; beside it, a wrong os_hash_value ends in deploy failed with bareon's words and no partition table",
    async () => {
      const cloud = inject('bootableImages').cloud;
      const cloudQcow2 = path.join(cloud, 'debian-cloud.qcow2');
      const cloudSha256 = (
        JSON.parse(await readFile(path.join(cloud, 'debian-cloud.manifest.json'), 'utf8')) as {
          artifacts: { format: string; sha256: string }[];
        }
      ).artifacts.find((a) => a.format === 'qcow2')!.sha256;

      // the direct node: its target and a twin full of random bytes that must not change
      const target = await blankDisk(path.join(dir, 'direct-target.raw'), 3 * GiB);
      const twin = await blankDisk(path.join(dir, 'direct-twin.raw'), 3 * GiB);
      await scribble(twin);
      const twinBefore = await sha256File(twin);
      // the failing node's target already holds a GPT: the failed write must not leave one
      const failTarget = await blankDisk(path.join(dir, 'fail-target.raw'), GiB);
      await execa('sgdisk', ['-n', '1:0:+100M', failTarget]);
      expect(await tableType(failTarget)).toBe('gpt');
      // a small image with a partition table of its own, announced with a wrong digest
      const small = path.join(dir, 'small.raw');
      await blankDisk(small, 64 * 2 ** 20);
      await execa('sgdisk', ['-n', '1:0:0', '-c', '1:image', small]);
      const smallQcow2 = path.join(dir, 'small.qcow2');
      await execa('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', small, smallQcow2]);
      const wrong = (await sha256File(small)).replace(/^./, (c) => (c === '0' ? '1' : '0'));

      sandbox.serve({ '/cloud.qcow2': { file: cloudQcow2 }, '/small.qcow2': { file: smallQcow2 } });
      const macs = { direct: '52:54:00:b0:00:01', fail: '52:54:00:b0:00:02' };
      // fake-hardware's management knows only PXE as a boot device, and a direct deploy ends by
      // setting the boot device to disk, except (in UEFI mode, 21.4's default) on a vendor whose
      // firmware keeps its boot order in NVRAM: the node says it is one, or the deploy would fail
      // in Ironic after bareon's part succeeded
      /** A direct node whose serial hint names its disk, set to deploy a qcow2 of the image server. */
      const directNode = async (
        name: string,
        mac: string,
        serial: string,
        image: string,
        sha256: string,
        extra = {},
      ) => {
        const uuid = await sandbox.enroll(
          { name, deploy_interface: 'direct', properties: { root_device: { serial }, ...extra } },
          mac,
        );
        await sandbox.patch(uuid, {
          '/instance_info/image_source': `http://${SITE}${image}`,
          '/instance_info/image_disk_format': 'qcow2',
          '/instance_info/image_os_hash_algo': 'sha256',
          '/instance_info/image_os_hash_value': sha256,
        });
        return uuid;
      };
      const direct = await directNode('direct-node', macs.direct, 'ironic-target', '/cloud.qcow2', cloudSha256, {
        vendor: 'lenovo',
      });
      const failing = await directNode('failing-node', macs.fail, 'fail-target', '/small.qcow2', wrong);
      // Ironic builds the config drive (an ISO, gzip+base64) from this itself
      await provision(direct, { configdrive: { meta_data: { hostname: 'ironic-direct' } } });
      await provision(failing, {});
      expect(sandbox.requests, 'the conductor checks each image URL itself').toContainEqual({
        method: 'HEAD',
        url: '/cloud.qcow2',
      });

      // the agent's API refuses a command without the token Ironic handed out at lookup
      const probe = (async () => {
        const deadline = Date.now() + 10 * 60_000;
        let url: string | undefined;
        while (!url && Date.now() < deadline) {
          url = ((await sandbox.node(direct)).driver_internal_info as { agent_url?: string }).agent_url;
          if (!url) await new Promise((r) => setTimeout(r, 1000));
        }
        if (!url) return { url, status: 'no agent_url' };
        const r = await execa(
          'nsenter',
          [
            `--net=${sandbox.netns}`,
            'curl',
            '-s',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            '-X',
            'POST',
            '-H',
            'content-type: application/json',
            '-d',
            '{"name":"standby.power_off","params":{}}',
            `${url}/v1/commands/`,
          ],
          { reject: false },
        );
        return { url, status: r.stdout };
      })();

      const [ok, bad] = await Promise.all([
        deployWithAgent(direct, ['active', 'deploy failed'], {
          name: 'ironic-direct',
          mac: macs.direct,
          advertise: '127.0.0.11',
          disks: [
            { file: target, serial: 'ironic-target' },
            { file: twin, serial: 'ironic-twin' },
          ],
        }),
        deployWithAgent(failing, ['active', 'deploy failed'], {
          name: 'ironic-direct-failure',
          mac: macs.fail,
          advertise: '127.0.0.12',
          disks: [{ file: failTarget, serial: 'fail-target' }],
        }),
      ]);
      console.log(
        `Ironic direct: agent start to active in ${ok.seconds.toFixed(0)} s (qcow2 of 857 MiB, 1.28 GiB virtual); the failing node reached ${bad.node.provision_state} in ${bad.seconds.toFixed(0)} s`,
      );
      expect(bad.node.provision_state).toBe('deploy failed');
      expect(bad.node.last_error).toMatch(/checksum mismatch: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/);
      expect(bad.node.last_error).toContain(wrong);
      expect(await tableType(failTarget), 'the failed write leaves no partition table').toBe('');
      const refused = await probe;
      expect(refused, 'a command without agent_token').toMatchObject({ url: 'http://127.0.0.11:9999', status: '401' });

      expect(ok.node.provision_state, `${ok.node.last_error}\n${ok.run.report}`).toBe('active');
      expect(ok.run.exited, `Ironic's standby.power_off powers the agent off; ${ok.run.report}`).toBe(true);
      expect(ok.run.log).toMatch(/"event":"finished","task":"deploy/);
      expect(await sha256File(twin), 'the other disk is untouched').toBe(twinBefore);
      // standby.get_partition_uuids: Ironic keeps the disk identifier of the disk written whole
      const mbr = Buffer.alloc(512);
      const fh = await open(target, 'r');
      await fh.read(mbr, 0, 512, 0);
      await fh.close();
      expect((ok.node.driver_internal_info as { root_uuid_or_disk_id?: string }).root_uuid_or_disk_id).toBe(
        `0x${mbr.readUInt32LE(440).toString(16).padStart(8, '0')}`,
      );
      // beside the boot of the result: the same deploy as a bareon job (bareon.job=URL), for the timing
      const jobTarget = await blankDisk(path.join(dir, 'job-target.raw'), 3 * GiB);
      sandbox.serve({
        '/job/job.json': JSON.stringify({
          source: `http://${SITE}/cloud.qcow2`,
          checksum: `sha256:${cloudSha256}`,
          target_hints: { serial: 'job-target' },
          configdrive: { meta_data: 'meta-data' },
          when_done: 'poweroff',
        }),
        '/job/meta-data': 'instance-id: iid-job\nlocal-hostname: job-direct\n',
      });
      const { vmlinuz, initramfs } = agent();
      const [boot, job] = await Promise.all([
        runVm({
          name: 'ironic-direct-boot',
          firmware: 'uefi',
          disks: [{ file: target, snapshot: true }],
          until: /ironic-direct login:/,
          timeoutMs: 8 * 60_000,
        }),
        runVm({
          name: 'job-direct',
          firmware: 'bios',
          netns: sandbox.netns,
          netboot: {
            kernel: vmlinuz,
            initrd: initramfs,
            append: `console=ttyS0,115200n8 bareon.agent bareon.job=http://${SITE}/job/job.json`,
          },
          forwards: [{ guest: `${SITE}:80`, to: path.join(sandbox.dir, 'site.sock') }],
          disks: [{ file: jobTarget, serial: 'job-target' }],
          until: /bareon-job: (ok|failed)/,
          waitForExit: true,
          timeoutMs: 15 * 60_000,
          memoryMiB: 4096,
        }),
      ]);
      expect(boot.matched, `the config drive's hostname at the login prompt; ${boot.report}`).toBe(true);
      expect(job.log, job.report).toMatch(/bareon-job: ok/);
      console.log(
        `the same deploy as a bareon job (bareon.job=URL): agent start to power off in ${job.seconds.toFixed(0)} s; through Ironic: agent start to active in ${ok.seconds.toFixed(0)} s`,
      );
    },
    TEST_TIMEOUT,
  );

  it(
    "custom-agent: bareon's deploy step lays RAID 1 + LVM over two disks from a job in Ironic's deploy_steps; active, and the result boots whole and from either disk alone",
    async () => {
      const { tar, tarSha256 } = agent();
      const layout = parse(await readFile(path.join(REPO, 'test/fixtures/layouts/raid1-lvm.yaml'), 'utf8'));
      sandbox.serve({ '/rootfs.tar.zst': { file: tar } });
      const mac = '52:54:00:b0:00:03';
      const uuid = await sandbox.enroll({ name: 'raid-node', deploy_interface: 'custom-agent' }, mac, 'manageable');
      // disks from an earlier life: a GPT and an ext4 filesystem in its partition, and an md member
      const a = await blankDisk(path.join(dir, 'raid-a.raw'), 4 * GiB);
      const b = await blankDisk(path.join(dir, 'raid-b.raw'), 4 * GiB);
      for (const disk of [a, b]) {
        await execa('sgdisk', ['-n', '1:2048:+256M', disk]);
        await execa('mkfs.ext4', ['-q', '-F', '-E', `offset=${MiB}`, disk, '128M']);
        expect(await signatureAt(disk, MiB)).toBe('ext4');
      }

      const bothDisks = [
        { file: a, serial: 'disk-a' },
        { file: b, serial: 'disk-b' },
      ];
      // manual cleaning with bareon's erase_devices_metadata: the agent boots, Ironic runs the step
      await sandbox.call('PUT', `/v1/nodes/${uuid}/states/provision`, {
        target: 'clean',
        clean_steps: [{ interface: 'deploy', step: 'erase_devices_metadata' }],
      });
      const cleaning = await sandbox.waitFor(uuid, ['clean wait', 'clean failed'], 120_000);
      expect(cleaning.provision_state, `${cleaning.last_error}`).toBe('clean wait');
      const cleaned = await deployWithAgent(uuid, ['manageable', 'clean failed'], {
        name: 'ironic-clean',
        mac,
        advertise: '127.0.0.13',
        disks: bothDisks,
      });
      console.log(
        `Ironic manual cleaning (erase_devices_metadata): agent start to manageable in ${cleaned.seconds.toFixed(0)} s`,
      );
      expect(cleaned.node.provision_state, `${cleaned.node.last_error}\n${cleaned.run.report}`).toBe('manageable');
      for (const disk of [a, b]) {
        expect(await tableType(disk), `${disk}: no partition table after cleaning`).toBe('');
        expect(await signatureAt(disk, MiB), `${disk}: no filesystem signature where the partition was`).toBe('');
      }
      await sandbox.move(uuid, 'provide', 'available');

      await provision(uuid, {
        deploy_steps: [
          {
            interface: 'deploy',
            step: 'bareon_deploy',
            priority: 90,
            args: { source: `http://${SITE}/rootfs.tar.zst`, checksum: `sha256:${tarSha256}`, layout },
          },
        ],
      });
      const { node, seconds, run } = await deployWithAgent(uuid, ['active', 'deploy failed'], {
        name: 'ironic-custom-agent',
        mac,
        advertise: '127.0.0.14',
        disks: bothDisks,
      });
      console.log(`Ironic custom-agent (RAID 1 + LVM): agent start to active in ${seconds.toFixed(0)} s`);
      expect(node.provision_state, `${node.last_error}\n${run.report}`).toBe('active');
      expect(run.log).toMatch(/"event":"finished","task":"raid/);
      expect(run.log).toMatch(/"event":"finished","task":"lvm/);

      const whole = await runVm({
        name: 'ironic-raid-both',
        firmware: 'bios',
        disks: [
          { file: a, snapshot: true },
          { file: b, snapshot: true },
        ],
        until: /login:/,
        timeoutMs: 8 * 60_000,
      });
      expect(whole.matched, whole.report).toBe(true);
      const [onlyA, onlyB] = await Promise.all([
        runVm({
          name: 'ironic-raid-a',
          firmware: 'bios',
          disks: [{ file: a, snapshot: true }],
          until: /login:/,
          timeoutMs: 8 * 60_000,
        }),
        runVm({
          name: 'ironic-raid-b',
          firmware: 'uefi',
          disks: [{ file: b, snapshot: true }],
          until: /login:/,
          timeoutMs: 8 * 60_000,
        }),
      ]);
      expect(onlyA.matched, `disk a alone (BIOS): ${onlyA.report}`).toBe(true);
      expect(onlyB.matched, `disk b alone (UEFI): ${onlyB.report}`).toBe(true);
    },
    TEST_TIMEOUT,
  );
});
