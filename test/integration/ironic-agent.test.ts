import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareon } from '../helpers/cli.js';
import { leftovers, sha256File, tarZst } from '../helpers/deploy.js';

/**
 * `bareon agent --ironic …` on this machine, driven over loopback the way Ironic's conductor drives
 * its deploy ramdisk: a fake Ironic API answers lookup and takes heartbeats, and the test sends the
 * agent's commands to the callback URL it advertised (the real Ironic in a container is issue 25's
 * e2e). The node's root device hint matches no disk of this machine, so write_image fails in
 * bareon's words; bareon's own step deploys a rootfs onto an image file its layout names.
 */
const MiB = 2 ** 20;
const TOKEN = 'token-from-lookup';
const NODE = '8a4b2d2e-5c3f-4f0e-9a55-0c1d2e3f4a5b';
let dir: string;
let ironic: http.Server;
let ironicUrl: string;
let image: string;
let imageSha: string;
let rootfs: string;
let rootfsSha: string;
let backing: string;
const heartbeats: Record<string, string>[] = [];

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

async function readHead(file: string, length: number, offset = 0): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ironic-agent-'));
  image = path.join(dir, 'disk.raw');
  await execa('truncate', ['-s', `${16 * MiB}`, image]);
  await execa('sgdisk', ['-n', '1:2048:+12M', '-c', '1:data', image]);
  // data that a wrong write would not reproduce
  await execa('dd', [`if=/dev/urandom`, `of=${image}`, 'bs=1M', 'seek=2', 'count=4', 'conv=notrunc', 'status=none']);
  imageSha = await sha256File(image);
  rootfs = path.join(dir, 'rootfs.tar.zst');
  await tarZst(rootfs, [
    ['etc/hostname', 'from-ironic\n'],
    ['usr/bin/hello', '#!/bin/sh\necho hi\n'],
  ]);
  rootfsSha = await sha256File(rootfs);
  backing = path.join(dir, 'target.img');
  await execa('truncate', ['-s', `${256 * MiB}`, backing]);
  ironic = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/v1/lookup') {
      const ok = req.headers['x-openstack-ironic-api-version'] !== undefined;
      res.writeHead(ok ? 200 : 406, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({
          node: {
            uuid: NODE,
            properties: { root_device: { serial: 'no-such-disk' } },
            instance_info: {},
            driver_internal_info: {},
          },
          config: { agent_token: TOKEN, agent_token_required: true, heartbeat_timeout: 300 },
        }),
      );
    }
    if (req.method === 'POST' && url.pathname === `/v1/heartbeat/${NODE}`) {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        heartbeats.push(JSON.parse(body));
        res.writeHead(202).end();
      });
      return;
    }
    const served = { '/images/disk.raw': image, '/images/rootfs.tar.zst': rootfs }[url.pathname];
    if (req.method === 'GET' && served) {
      return void stat(served).then((st) => {
        res.writeHead(200, { 'content-length': st.size });
        createReadStream(served).pipe(res);
      });
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => ironic.listen(0, '127.0.0.1', () => resolve()));
  ironicUrl = `http://127.0.0.1:${(ironic.address() as AddressInfo).port}`;
});

afterAll(async () => {
  ironic?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Sends a command as Ironic's agent_client does: POST /v1/commands/?wait=…&agent_token=…. */
async function command(callback: string, name: string, params: object, opts: { wait?: boolean; token?: string } = {}) {
  const q = new URLSearchParams({ wait: String(opts.wait ?? true) });
  if (opts.token !== '') q.set('agent_token', opts.token ?? TOKEN);
  const res = await fetch(`${callback}/v1/commands/?${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, params }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Polls GET /v1/commands/{id} until the command is no longer RUNNING, as Ironic does on heartbeats. */
async function finished(callback: string, id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 600; i++) {
    const r = (await (await fetch(`${callback}/v1/commands/${id}`)).json()) as Record<string, unknown>;
    if (r.command_status !== 'RUNNING') return r;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`command ${id} still running`);
}

const NODE_AS_SENT = { uuid: NODE, properties: { root_device: { serial: 'no-such-disk' } }, instance_info: {} };

/** deploy.write_image as the direct deploy interface sends it. */
const writeImage = (sha: string) => ({
  step: {
    interface: 'deploy',
    step: 'write_image',
    priority: 80,
    args: {
      image_info: {
        id: 'img',
        urls: [`${ironicUrl}/images/disk.raw`],
        disk_format: 'raw',
        os_hash_algo: 'sha256',
        os_hash_value: sha,
      },
    },
  },
  node: NODE_AS_SENT,
  ports: [],
});

/** bareon's own step, as custom-agent sends it from a deploy template: a bareon job as its args. */
const bareonDeploy = (sha: string) => ({
  step: {
    interface: 'deploy',
    step: 'bareon_deploy',
    priority: 80,
    args: {
      source: `${ironicUrl}/images/rootfs.tar.zst`,
      checksum: `sha256:${sha}`,
      layout: {
        disks: [
          {
            id: 't',
            device: backing,
            partitions: [{ type: 'linux', size: 'remaining', fs: { type: 'ext4', label: 'root' }, mount: '/' }],
          },
        ],
      },
    },
  },
  node: NODE_AS_SENT,
  ports: [],
});

describe('bareon agent as the deploy ramdisk of an Ironic (loopback, fake API)', () => {
  it('looks up, heartbeats its callback, refuses commands without the token, fails write_image and a bad checksum in bareon’s words, deploys with bareon_deploy, and ends on power_off', async () => {
    const port = await freePort();
    const agent = bareon('bareon', [
      'agent',
      '--ironic',
      `ipa-api-url=${ironicUrl} ipa-advertise-host=127.0.0.1 ipa-advertise-port=${port} ipa-listen-host=127.0.0.1`,
    ]);
    try {
      for (let i = 0; i < 300 && !heartbeats.length; i++) await new Promise((r) => setTimeout(r, 100));
      expect(heartbeats[0], String((await Promise.race([agent, Promise.resolve(undefined)]))?.all ?? '')).toMatchObject(
        {
          callback_url: `http://127.0.0.1:${port}`,
          agent_token: TOKEN,
          agent_version: expect.any(String),
        },
      );
      const callback = heartbeats[0].callback_url;
      const status = (await (await fetch(`${callback}/v1/status`)).json()) as Record<string, unknown>;
      expect(status).toHaveProperty('version');

      const refused = await command(callback, 'deploy.get_deploy_steps', {}, { token: '' });
      expect(refused.status).toBe(401);

      const steps = await command(callback, 'deploy.get_deploy_steps', { node: {}, ports: [] });
      expect(steps.body).toMatchObject({ command_status: 'SUCCEEDED' });
      const listed = JSON.stringify(steps.body.command_result);
      expect(listed).toContain('"write_image"');
      expect(listed).toContain('"bareon_deploy"');

      // write_image: the node's root device hint matches no disk here; Ironic's last_error gets bareon's words
      const direct = await command(callback, 'deploy.execute_deploy_step', writeImage(imageSha), { wait: false });
      const directDone = await finished(callback, String(direct.body.id));
      expect(directDone.command_status).toBe('FAILED');
      expect(JSON.stringify(directDone.command_error)).toMatch(/no disk matches serial=no-such-disk/);

      // bareon_deploy with a wrong checksum: FAILED with bareon's checksum message, no partition table left
      const bad = await command(callback, 'deploy.execute_deploy_step', bareonDeploy('0'.repeat(64)), { wait: false });
      const badDone = await finished(callback, String(bad.body.id));
      expect(badDone.command_status).toBe('FAILED');
      expect(JSON.stringify(badDone.command_error)).toMatch(/sha256/);
      expect((await readHead(backing, MiB)).equals(Buffer.alloc(MiB)), 'MBR and primary GPT cleared').toBe(true);

      const good = await command(callback, 'deploy.execute_deploy_step', bareonDeploy(rootfsSha), { wait: false });
      const done = await finished(callback, String(good.body.id));
      expect(done, JSON.stringify(done.command_error)).toMatchObject({
        command_status: 'SUCCEEDED',
        command_name: 'execute_deploy_step',
      });
      expect((done.command_result as { deploy_step: { step: string } }).deploy_step.step).toBe('bareon_deploy');
      expect((await execa('sgdisk', ['-v', backing])).stdout).toContain('No problems found');
      const start = Number((await execa('sgdisk', ['-i', '1', backing])).stdout.match(/First sector: (\d+)/)![1]) * 512;
      const part = path.join(dir, 'root.ext4');
      await execa('dd', [`if=${backing}`, `of=${part}`, 'bs=1M', `skip=${start / MiB}`, 'status=none']);
      const hostname = await execa('debugfs', ['-R', 'cat /etc/hostname', part], { env: { DEBUGFS_PAGER: 'cat' } });
      expect(hostname.stdout.trim()).toBe('from-ironic');
      expect(await leftovers(backing)).toEqual([]);
      // a heartbeat followed each command's end, so Ironic sees it at once
      expect(heartbeats.length).toBeGreaterThanOrEqual(4);

      const off = await command(callback, 'standby.power_off', {});
      expect(off.body).toMatchObject({ command_status: 'SUCCEEDED' });
      const r = await agent;
      expect(r.exitCode, String(r.all)).toBe(0);
      expect(r.stdout).toMatch(/ironic: poweroff/);
    } finally {
      agent.kill('SIGTERM');
      await agent.catch(() => {});
    }
  });
});

describe("standby.get_partition_uuids' answer, read from real disk images", () => {
  it('gives the MBR disk identifier as root uuid, and on GPT the ESP and every partition by UUID', async () => {
    const { partitionUuids } = await import('../../src/host/partition-uuids.js');
    const gpt = path.join(dir, 'uuids-gpt.img');
    await execa('truncate', ['-s', `${64 * MiB}`, gpt]);
    const esp = 'c0ffee00-1111-4222-8333-444455556666';
    const root = '0badcafe-aaaa-4bbb-8ccc-dddd0000eeee';
    await execa('sgdisk', [
      '-n',
      '1:2048:+8M',
      '-t',
      '1:ef00',
      '-u',
      `1:${esp}`,
      '-n',
      '2:0:0',
      '-u',
      `2:${root}`,
      gpt,
    ]);
    expect(await partitionUuids(gpt)).toEqual({
      'root uuid': '0x00000000',
      'efi system partition uuid': esp,
      partitions: { [`${gpt}1`]: esp, [`${gpt}2`]: root },
    });

    const mbr = path.join(dir, 'uuids-mbr.img');
    await execa('truncate', ['-s', `${64 * MiB}`, mbr]);
    await execa('sfdisk', ['-q', mbr], { input: 'label: dos\nlabel-id: 0x1234abcd\n,16M,L\n' });
    const answer = await partitionUuids(mbr);
    expect(answer['root uuid']).toBe('0x1234abcd');
    expect(answer).not.toHaveProperty('efi system partition uuid');
    // an MBR partition's "UUID" is the disk identifier and its number
    expect(answer.partitions).toEqual({ [`${mbr}1`]: '1234abcd-01' });
  });
});
