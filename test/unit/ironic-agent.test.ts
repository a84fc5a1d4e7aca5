import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentApi, type CommandResult } from '../../src/agent/ironic/agent-api.js';
import {
  bareonStepDeployInput,
  checksumFromFile,
  configDriveFlags,
  HARDWARE_MANAGER,
  imageInfoDeployInput,
  ironicCommands,
  rootDeviceTargetHints,
} from '../../src/agent/ironic/commands.js';
import {
  agentTokenOf,
  Heartbeater,
  IronicClient,
  ironicFault,
  listMacs,
  nodeHttpFetch,
  routeSourceAddress,
} from '../../src/agent/ironic/ironic-client.js';
import { readIso } from '../../src/agent/ironic/iso9660.js';
import { callbackUrl, ironicAgentParams, parseCmdline } from '../../src/agent/ironic/kernel-params.js';
import type { DeployInput } from '../../src/objects/deploy.js';

const SHA = 'a'.repeat(64);
const TOKEN = 'secret-token-from-lookup';
const NODE = { uuid: '1be26c0b-03f2-4d2e-ae87-c02d7f33c123', properties: { root_device: { serial: 's== DISK-1' } } };

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ironic-agent-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- kernel parameters

describe('kernel parameters', () => {
  it("reads ironic-python-agent's names, with its defaults", () => {
    const p = ironicAgentParams(
      'console=ttyS0 ipa-api-url=http://10.0.0.1:6385/ ipa-advertise-host=10.0.0.7 BOOTIF=01-52-54-00-AB-CD-EF',
    );
    expect(p).toEqual({
      apiUrl: 'http://10.0.0.1:6385',
      advertiseHost: '10.0.0.7',
      advertisePort: 9999,
      listenHost: '::',
      listenPort: 9999,
      lookupTimeoutMs: 300_000,
      lookupIntervalMs: 1000,
      nodeUuid: undefined,
      agentToken: undefined,
      insecure: false,
      bootMac: '52:54:00:ab:cd:ef',
    });
  });

  it("reads bareon's names, quoted values and the rest", () => {
    const p = ironicAgentParams(
      `bareon.agent bareon.ironic-api-url="https://ironic.example:6385" bareon.ironic-advertise-port=8080 ipa-lookup-timeout=30 ipa-lookup-interval=0.5 bareon.ironic-node-uuid=${NODE.uuid.toUpperCase()} ipa-insecure=1 ipa-agent-token=abc`,
    );
    expect(p).toMatchObject({
      apiUrl: 'https://ironic.example:6385',
      advertisePort: 8080,
      listenPort: 8080,
      lookupTimeoutMs: 30_000,
      lookupIntervalMs: 500,
      nodeUuid: NODE.uuid,
      insecure: true,
      agentToken: 'abc',
    });
    expect(parseCmdline('a b=1 c="x y" b=2').get('b')).toBe('2');
    expect(parseCmdline('a b=1 c="x y"').get('c')).toBe('x y');
  });

  it('is undefined without an API URL, and says which parameter is wrong', () => {
    expect(ironicAgentParams('console=ttyS0 bareon.agent')).toBeUndefined();
    expect(() => ironicAgentParams('ipa-api-url=mdns')).toThrow(/mDNS/);
    expect(() => ironicAgentParams('ipa-api-url=nonsense')).toThrow(/ipa-api-url=nonsense is not a URL/);
    expect(() => ironicAgentParams('ipa-api-url=ftp://x')).toThrow(/http\(s\)/);
    expect(() => ironicAgentParams('ipa-api-url=http://x ipa-advertise-port=99999')).toThrow(
      /ipa-advertise-port=99999 is not a TCP port/,
    );
    expect(() => ironicAgentParams('ipa-api-url=http://x ipa-lookup-timeout=soon')).toThrow(/not a number of seconds/);
    expect(() => ironicAgentParams('ipa-api-url=http://x bareon.ironic-api-url=http://y')).toThrow(/disagree/);
    expect(() => ironicAgentParams('ipa-api-url=http://x bareon.ironic-node-uuid=17')).toThrow(/not a UUID/);
    expect(() => ironicAgentParams('ipa-api-url=http://x ipa-insecure=maybe')).toThrow(/neither true nor false/);
  });

  it('makes callback URLs, IPv6 in brackets', () => {
    expect(callbackUrl('10.0.0.7', 9999)).toBe('http://10.0.0.7:9999');
    expect(callbackUrl('fd00::7', 9999)).toBe('http://[fd00::7]:9999');
  });
});

// ---------------------------------------------------------------- MACs and routes

describe('this machine', () => {
  it('lists Ethernet MACs from sysfs, without loopback or zero MACs', async () => {
    const sys = path.join(tmp, 'sys-class-net');
    const iface = async (name: string, type: string, address: string) => {
      await mkdir(path.join(sys, name), { recursive: true });
      await writeFile(path.join(sys, name, 'type'), `${type}\n`);
      await writeFile(path.join(sys, name, 'address'), `${address}\n`);
    };
    await iface('lo', '772', '00:00:00:00:00:00');
    await iface('eth1', '1', '52:54:00:00:00:02');
    await iface('eth0', '1', '52:54:00:00:00:01');
    await iface('dummy0', '1', '00:00:00:00:00:00');
    await iface('ib0', '32', '80:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00');
    expect(await listMacs(sys)).toEqual(['52:54:00:00:00:01', '52:54:00:00:00:02']);
    expect(await listMacs(path.join(tmp, 'none'))).toEqual([]);
  });

  it('finds the address it reaches a host from', async () => {
    expect(await routeSourceAddress('127.0.0.1')).toBe('127.0.0.1');
  });
});

// ---------------------------------------------------------------- a fake Ironic

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function fakeIronic(
  answer: (req: Seen) => { status: number; body: unknown },
): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const r: Seen = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    };
    seen.push(r);
    const a = answer(r);
    const data = typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
    res.writeHead(a.status, { 'Content-Type': 'application/json' });
    res.end(data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const ironicError = (text: string) => ({ error_message: JSON.stringify({ faultstring: text, faultcode: 'Client' }) });

describe('lookup and heartbeat against a fake Ironic', () => {
  it('looks up by MAC with the API version header, retrying while Ironic answers 404', async () => {
    let calls = 0;
    const ironic = await fakeIronic(() =>
      ++calls < 3
        ? { status: 404, body: ironicError('Not found') }
        : {
            status: 200,
            body: {
              node: { ...NODE, instance_info: {}, driver_internal_info: {} },
              config: { heartbeat_timeout: 300, agent_token: TOKEN, agent_token_required: true },
            },
          },
    );
    try {
      const logs: string[] = [];
      const client = new IronicClient({ apiUrl: `${ironic.url}/`, log: (t) => logs.push(t), sleep: async () => {} });
      const found = await client.lookup({
        macs: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
        nodeUuid: NODE.uuid,
        timeoutMs: 10_000,
        intervalMs: 10,
      });
      expect(found.node.uuid).toBe(NODE.uuid);
      expect(agentTokenOf(found)).toBe(TOKEN);
      expect(ironic.seen).toHaveLength(3);
      const req = ironic.seen[2];
      expect(req.method).toBe('GET');
      const u = new URL(req.url, 'http://x');
      expect(u.pathname).toBe('/v1/lookup');
      expect(u.searchParams.get('addresses')).toBe('52:54:00:00:00:01,52:54:00:00:00:02');
      expect(u.searchParams.get('node_uuid')).toBe(NODE.uuid);
      expect(req.headers['x-openstack-ironic-api-version']).toBe('1.68');
      expect(logs[0]).toMatch(/lookup: Ironic answered 404: Not found \(trying again\)/);
    } finally {
      await ironic.close();
    }
  });

  it('gives up after the lookup timeout with the last error', async () => {
    const ironic = await fakeIronic(() => ({ status: 404, body: ironicError('Not found') }));
    try {
      const client = new IronicClient({ apiUrl: ironic.url, sleep: async () => {} });
      await expect(client.lookup({ macs: ['52:54:00:00:00:01'], timeoutMs: 0, intervalMs: 10 })).rejects.toThrow(
        /found no node for 52:54:00:00:00:01 within 0 s: lookup: Ironic answered 404: Not found/,
      );
      await expect(client.lookup({ macs: [], timeoutMs: 0, intervalMs: 10 })).rejects.toThrow(/no Ethernet MAC/);
    } finally {
      await ironic.close();
    }
  });

  it('refuses a token handed out before, unless one was given at boot', () => {
    const result = { node: NODE, config: { agent_token: '******' } };
    expect(() => agentTokenOf(result)).toThrow(/handed node .* agent token to an earlier lookup/);
    expect(agentTokenOf(result, 'pregenerated')).toBe('pregenerated');
    expect(() => agentTokenOf({ node: NODE, config: {} })).toThrow(/holds no agent token/);
  });

  it("reads Ironic's error bodies", () => {
    expect(ironicFault(JSON.stringify(ironicError('Invalid or missing agent token received.')))).toBe(
      'Invalid or missing agent token received.',
    );
    expect(ironicFault('{"faultstring": "plain"}')).toBe('plain');
    expect(ironicFault('<html>oops</html>')).toBe('<html>oops</html>');
  });

  it('heartbeats callback_url, agent_token and agent_version; force() sends one at once', async () => {
    const ironic = await fakeIronic((r) =>
      JSON.parse(r.body).agent_token === TOKEN
        ? { status: 202, body: '' }
        : { status: 400, body: ironicError('Invalid or missing agent token received.') },
    );
    try {
      const client = new IronicClient({ apiUrl: ironic.url, fetch: nodeHttpFetch({ timeoutMs: 2000 }) });
      await client.heartbeat(NODE.uuid, {
        callbackUrl: 'http://127.0.0.1:9999',
        agentToken: TOKEN,
        agentVersion: '0.1.0',
      });
      const hb = ironic.seen[0];
      expect(hb.method).toBe('POST');
      expect(hb.url).toBe(`/v1/heartbeat/${NODE.uuid}`);
      expect(hb.headers['x-openstack-ironic-api-version']).toBe('1.68');
      expect(hb.headers['content-type']).toBe('application/json');
      expect(JSON.parse(hb.body)).toEqual({
        callback_url: 'http://127.0.0.1:9999',
        agent_token: TOKEN,
        agent_version: '0.1.0',
      });
      await expect(
        client.heartbeat(NODE.uuid, {
          callbackUrl: 'http://127.0.0.1:9999',
          agentToken: 'wrong',
          agentVersion: '0.1.0',
        }),
      ).rejects.toThrow(/heartbeat: Ironic answered 400: Invalid or missing agent token received/);

      const logs: string[] = [];
      const beater = new Heartbeater({
        client,
        node: NODE.uuid,
        timeoutS: 300,
        log: (t) => logs.push(t),
        fields: () => ({ callbackUrl: 'http://127.0.0.1:9999', agentToken: TOKEN, agentVersion: '0.1.0' }),
      });
      beater.start();
      beater.force();
      // the first, and the forced one right after it
      await expect.poll(() => beater.sent, { timeout: 10_000 }).toBe(2);
      await beater.stop();
      expect(beater.sent).toBe(2);
      expect(logs).toEqual([]);
    } finally {
      await ironic.close();
    }
  });
});

// ---------------------------------------------------------------- the agent API, driven as Ironic does

interface Harness {
  url: string;
  api: AgentApi;
  deploys: DeployInput[];
  power: string[];
  done: CommandResult[];
  /** The deploy waits for this when set. */
  gate?: Promise<void>;
  failWith?: Error;
}

async function startAgent(): Promise<Harness> {
  const h = { deploys: [], power: [], done: [] } as unknown as Harness;
  const commands = ironicCommands({
    version: '0.1.0',
    deploy: async (input) => {
      h.deploys.push(input);
      await h.gate;
      if (h.failWith) throw h.failWith;
    },
    power: async (action) => {
      h.power.push(action);
    },
    sync: async () => {},
    eraseDevicesMetadata: async () => {},
    partitionUuids: async () => ({ 'root uuid': '0x1234abcd' }),
    logs: async () => [
      { name: 'journal', data: Buffer.from('boot\nlookup\n') },
      { name: 'events.jsonl', data: Buffer.from('{"event":"started"}\n') },
    ],
    fetchBytes: async (url) => {
      throw new Error(`no network in this test: ${url}`);
    },
    workDir: path.join(tmp, 'work'),
  });
  h.api = new AgentApi({ commands, token: () => TOKEN, version: '0.1.0', onCommandDone: (r) => h.done.push(r) });
  const addr = await h.api.listen(0, '127.0.0.1');
  h.url = `http://127.0.0.1:${addr.port}`;
  return h;
}

/** POST /v1/commands/ as agent_client.py sends it: wait and agent_token in the query, {name, params} as JSON. */
async function command(
  h: Harness,
  name: string,
  params: Record<string, unknown>,
  opts: { wait?: boolean; token?: string | null } = {},
) {
  const q = new URLSearchParams({ wait: String(opts.wait ?? false) });
  if (opts.token !== null) q.set('agent_token', opts.token ?? TOKEN);
  const res = await fetch(`${h.url}/v1/commands/?${q}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, params }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function get(h: Harness, p: string) {
  const res = await fetch(`${h.url}${p}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Polls GET /v1/commands/ until the last command named `short` is no longer RUNNING (agent_client's _wait_for_command). */
async function lastCommand(h: Harness, short: string): Promise<CommandResult> {
  for (let i = 0; i < 200; i++) {
    const { body } = await get(h, '/v1/commands/');
    const found = (body.commands as CommandResult[]).filter((c) => c.command_name === short).at(-1);
    if (found && found.command_status !== 'RUNNING') return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${short} never finished`);
}

const RESULT_KEYS = ['command_error', 'command_name', 'command_result', 'command_status', 'id'];

describe('the agent API, driven as agent_client.py does', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.api.close();
  });

  it('answers status and an empty command list without a token', async () => {
    h = await startAgent();
    const status = await get(h, '/v1/status');
    expect(status.status).toBe(200);
    expect(status.body.version).toBe('0.1.0');
    expect(typeof status.body.started_at).toBe('number');
    expect(await get(h, '/v1/commands/')).toEqual({ status: 200, body: { commands: [] } });
    expect(await get(h, '/v1/commands')).toEqual({ status: 200, body: { commands: [] } });
  });

  it('refuses a command without the token, or with another, with 401 and a faultstring', async () => {
    h = await startAgent();
    const none = await command(h, 'standby.sync', {}, { token: null, wait: true });
    expect(none.status).toBe(401);
    expect(none.body.faultstring).toMatch(/^Token invalid: the command carries no agent token/);
    const wrong = await command(h, 'standby.sync', {}, { token: 'guess', wait: true });
    expect(wrong.status).toBe(401);
    expect(wrong.body.faultstring).toMatch(/other than the one Ironic handed this agent/);
    // Ironic reads 'agent_token' in a faultstring as "an old ramdisk": bareon's never says so
    expect(String(wrong.body.faultstring)).not.toContain('agent_token');
    expect((await get(h, '/v1/commands/')).body.commands).toEqual([]);
    const noLookup = new AgentApi({ commands: {}, token: () => undefined, version: 'x' });
    const addr = await noLookup.listen(0, '127.0.0.1');
    try {
      const res = await fetch(`http://127.0.0.1:${addr.port}/v1/commands/?agent_token=x`, {
        method: 'POST',
        body: JSON.stringify({ name: 'standby.sync', params: {} }),
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { faultstring: string }).faultstring).toMatch(/not looked its node up yet/);
    } finally {
      await noLookup.close();
    }
  });

  it('refuses a malformed body with 400', async () => {
    h = await startAgent();
    const res = await fetch(`${h.url}/v1/commands/?agent_token=${TOKEN}`, { method: 'POST', body: '{"name": "x"}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      faultcode: 'Client',
      faultstring: expect.stringMatching(/Missing or invalid name or params/),
    });
    expect((await get(h, '/v1/commands/nope')).status).toBe(404);
  });

  it('deploy.get_deploy_steps: the result refresh_steps needs', async () => {
    h = await startAgent();
    const { status, body } = await command(h, 'deploy.get_deploy_steps', { node: NODE, ports: [] }, { wait: true });
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(RESULT_KEYS);
    expect(body.command_name).toBe('get_deploy_steps');
    expect(body.command_status).toBe('SUCCEEDED');
    const result = body.command_result as {
      deploy_steps: Record<string, Record<string, unknown>[]>;
      hardware_manager_version: unknown;
    };
    expect(result.hardware_manager_version).toEqual({ [HARDWARE_MANAGER]: '0.1.0' });
    const steps = Object.values(result.deploy_steps).flat();
    for (const s of steps) expect(s).toMatchObject({ interface: 'deploy', priority: 0, step: expect.any(String) });
    expect(steps.map((s) => s.step)).toEqual(['write_image', 'bareon_deploy']);
    expect(Object.keys(steps[1].argsinfo as object)).toContain('layout');
    // a freshly booted agent: the only command is get_deploy_steps (agent_base's _freshly_booted)
    const list = (await get(h, '/v1/commands/')).body.commands as CommandResult[];
    expect(list.map((c) => c.command_name)).toEqual(['get_deploy_steps']);
  });

  it('deploy.execute_deploy_step write_image: RUNNING at once, polled to SUCCEEDED with the step echoed', async () => {
    h = await startAgent();
    let open!: () => void;
    h.gate = new Promise((r) => {
      open = r;
    });
    const step = {
      interface: 'deploy',
      step: 'write_image',
      priority: 80,
      args: {
        image_info: {
          id: 'disk.qcow2',
          urls: ['http://127.0.0.1:8080/disk.qcow2'],
          disk_format: 'qcow2',
          container_format: 'bare',
          stream_raw_images: true,
          os_hash_algo: 'sha256',
          os_hash_value: SHA.toUpperCase(),
          node_uuid: NODE.uuid,
        },
        configdrive: null,
      },
    };
    const params = { step, node: NODE, ports: [], deploy_version: { [HARDWARE_MANAGER]: '0.1.0' } };
    const first = await command(h, 'deploy.execute_deploy_step', params);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      command_name: 'execute_deploy_step',
      command_status: 'RUNNING',
      command_error: null,
    });
    // a second command while it runs: 409, "Agent is busy" (Ironic's AgentInProgress)
    const busy = await command(h, 'deploy.get_deploy_steps', { node: NODE, ports: [] }, { wait: true });
    expect(busy.status).toBe(409);
    expect(String(busy.body.faultstring).toLowerCase()).toContain('agent is busy');
    // the one command, by id, still running
    const byId = await get(h, `/v1/commands/${first.body.id}`);
    expect(byId.body.command_status).toBe('RUNNING');
    open();
    const waited = await get(h, `/v1/commands/${first.body.id}?wait=true`);
    expect(waited.body).toMatchObject({
      command_status: 'SUCCEEDED',
      command_result: { deploy_result: null, deploy_step: step },
    });
    const last = await lastCommand(h, 'execute_deploy_step');
    expect(last.id).toBe(first.body.id);
    expect(h.done.at(-1)?.id).toBe(first.body.id);
    expect(h.deploys).toHaveLength(1);
    expect(h.deploys[0]).toMatchObject({
      source: 'http://127.0.0.1:8080/disk.qcow2',
      format: 'qcow2',
      checksum: `sha256:${SHA}`,
      targetHints: ['serial=DISK-1'],
      settings: { verify: true, grow: false, preserveOnError: false },
      yes: true,
      configDrive: {},
    });
  });

  it("a failed deploy is FAILED with bareon's words in command_error.details", async () => {
    h = await startAgent();
    const { BareonError } = await import('../../src/core/errors.js');
    h.failWith = new BareonError('source http://x/disk.raw: checksum mismatch: sha256 abc, expected def', {
      hint: 'check the image',
    });
    const step = {
      interface: 'deploy',
      step: 'write_image',
      args: { image_info: { urls: ['http://x/disk.raw'], disk_format: 'raw', checksum: SHA } },
    };
    const res = await command(h, 'deploy.execute_deploy_step', { step, node: NODE, ports: [] }, { wait: true });
    expect(res.body.command_status).toBe('FAILED');
    expect(res.body.command_result).toBeNull();
    expect(res.body.command_error).toEqual({
      type: 'CommandExecutionError',
      code: 500,
      message: 'Command execution failed',
      details: 'source http://x/disk.raw: checksum mismatch: sha256 abc, expected def (check the image)',
    });
    // a bad mapping fails the same way, before any deploy
    const md5 = await command(
      h,
      'deploy.execute_deploy_step',
      {
        step: {
          ...step,
          args: { image_info: { urls: ['http://x/d'], os_hash_algo: 'md5', os_hash_value: 'f'.repeat(32) } },
        },
        node: NODE,
      },
      { wait: true },
    );
    expect((md5.body.command_error as { details: string }).details).toMatch(
      /bareon checks sources by sha256 or sha512, not md5/,
    );
    const unknownStep = await command(
      h,
      'deploy.execute_deploy_step',
      { step: { interface: 'raid', step: 'apply_configuration', args: {} }, node: NODE },
      { wait: true },
    );
    expect(unknownStep.body.command_error).toMatchObject({ type: 'InvalidCommandParamsError', code: 400 });
    expect(h.deploys).toHaveLength(1);
  });

  it('an unknown command is a FAILED command that names what the agent runs', async () => {
    h = await startAgent();
    const res = await command(h, 'rescue.finalize_rescue', { rescue_password: 'x' }, { wait: false });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ command_name: 'finalize_rescue', command_status: 'FAILED', command_result: null });
    const err = res.body.command_error as { type: string; details: string };
    expect(err.type).toBe('InvalidCommandError');
    expect(err.details).toMatch(
      /^Unknown command: rescue\.finalize_rescue; bareon's agent runs .*deploy\.execute_deploy_step/,
    );
    expect(((await get(h, '/v1/commands/')).body.commands as CommandResult[]).at(-1)?.command_status).toBe('FAILED');
  });

  it('the commands after write_image: partition UUIDs, boot loader, sync, logs, power off', async () => {
    h = await startAgent();
    const uuids = await command(h, 'standby.get_partition_uuids', {}, { wait: true });
    expect(uuids.body).toMatchObject({
      command_name: 'get_partition_uuids',
      command_status: 'SUCCEEDED',
      command_result: { 'root uuid': '0x1234abcd' },
    });

    const boot = await command(h, 'image.install_bootloader', {
      root_uuid: '0x1234abcd',
      efi_system_part_uuid: null,
      prep_boot_part_uuid: null,
      target_boot_mode: 'uefi',
    });
    expect(boot.body.command_name).toBe('install_bootloader');
    expect((await lastCommand(h, 'install_bootloader')).command_status).toBe('SUCCEEDED');

    const sync = await command(h, 'standby.sync', {}, { wait: true });
    expect(sync.body).toMatchObject({ command_name: 'sync', command_status: 'SUCCEEDED', command_result: null });
    expect(sync.body.faultstring).toBeUndefined();

    const logs = await command(h, 'log.collect_system_logs', {}, { wait: true });
    const archive = gunzipSync(
      Buffer.from((logs.body.command_result as { system_logs: string }).system_logs, 'base64'),
    );
    const tar = await import('tar-stream');
    const names: Record<string, string> = {};
    const extract = tar.extract();
    await new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          names[header.name] = Buffer.concat(chunks).toString();
          next();
        });
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
      extract.end(archive);
    });
    expect(names).toEqual({ journal: 'boot\nlookup\n', 'events.jsonl': '{"event":"started"}\n' });

    const off = await command(h, 'standby.power_off', {});
    expect(off.body.command_name).toBe('power_off');
    expect((await lastCommand(h, 'power_off')).command_status).toBe('SUCCEEDED');
    await expect.poll(() => h.power, { timeout: 10_000 }).toEqual(['poweroff']);
    await command(h, 'standby.run_image', {}, { wait: true });
    await expect.poll(() => h.power, { timeout: 10_000 }).toEqual(['poweroff', 'reboot']);
  });

  it('clean steps: get_clean_steps and erase_devices_metadata', async () => {
    h = await startAgent();
    const steps = await command(h, 'clean.get_clean_steps', { node: NODE, ports: [] }, { wait: true });
    const result = steps.body.command_result as {
      clean_steps: Record<string, Record<string, unknown>[]>;
      hardware_manager_version: unknown;
    };
    expect(Object.values(result.clean_steps).flat()).toEqual([
      expect.objectContaining({ interface: 'deploy', step: 'erase_devices_metadata', priority: 99 }),
    ]);
    expect(result.hardware_manager_version).toBeDefined();
    const step = { interface: 'deploy', step: 'erase_devices_metadata', priority: 99 };
    await command(h, 'clean.execute_clean_step', { step, node: NODE, ports: [], clean_version: {} });
    const done = await lastCommand(h, 'execute_clean_step');
    expect(done).toMatchObject({
      command_status: 'SUCCEEDED',
      command_result: { clean_result: null, clean_step: step },
    });
    const other = await command(
      h,
      'clean.execute_clean_step',
      { step: { interface: 'deploy', step: 'erase_devices' }, node: NODE },
      { wait: true },
    );
    expect((other.body.command_error as { details: string }).details).toMatch(
      /Unknown clean step deploy\.erase_devices/,
    );
  });
});

// ---------------------------------------------------------------- image_info and args → DeployInput

describe('mapping Ironic to a bareon deploy', () => {
  const deps = (files: Record<string, string> = {}) => ({
    workDir: path.join(tmp, 'map'),
    fetchBytes: async (url: string) => {
      if (!(url in files)) throw new Error(`no ${url}`);
      return Buffer.from(files[url]);
    },
  });

  it('root device hints become --target-hint strings; what bareon cannot match is an error', () => {
    expect(
      rootDeviceTargetHints({
        serial: 's== ABC 1',
        wwn: '0x5000c500',
        size: '>= 60',
        rotational: 'false',
        name: '/dev/vda',
        model: 'QEMU HARDDISK',
      }),
    ).toEqual([
      'serial=ABC 1',
      'wwn=0x5000c500',
      'size=>= 60GiB',
      'rotational=false',
      'name=/dev/vda',
      'model=QEMU HARDDISK',
    ]);
    expect(rootDeviceTargetHints({ size: 100, rotational: true })).toEqual(['size=100GiB', 'rotational=true']);
    expect(rootDeviceTargetHints(undefined)).toEqual([]);
    expect(() => rootDeviceTargetHints({ serial: '<in> A B' })).toThrow(/operator <in> is not supported/);
    expect(() => rootDeviceTargetHints({ hctl: '1:0:0:0' })).toThrow(/not hctl/);
    expect(() => rootDeviceTargetHints({ size: '1.5' })).toThrow(/whole GiB/);
    expect(() => rootDeviceTargetHints({ rotational: 'maybe' })).toThrow(/true or false/);
  });

  it('image_info: checksums by os_hash, legacy checksum and checksum file; refusals', async () => {
    const info = (extra: Record<string, unknown>) => ({
      image_info: { urls: ['http://h/img/disk.raw.zst'], disk_format: 'raw', ...extra },
    });
    const node = {
      uuid: NODE.uuid,
      properties: { root_device: { serial: 'P' } },
      instance_info: { root_device: { serial: 'I' } },
    };
    const a = await imageInfoDeployInput(info({ os_hash_algo: 'sha256', os_hash_value: SHA }), node, deps());
    expect(a).toMatchObject({
      source: 'http://h/img/disk.raw.zst',
      format: undefined,
      checksum: `sha256:${SHA}`,
      targetHints: ['serial=I'],
    });
    expect((await imageInfoDeployInput(info({ checksum: SHA }), NODE, deps())).checksum).toBe(`sha256:${SHA}`);
    const sums = {
      'http://h/img/SHA256SUMS': `# sums\n${'b'.repeat(64)}  other.raw\n${'c'.repeat(64)} *disk.raw.zst\n`,
    };
    expect((await imageInfoDeployInput(info({ checksum: 'http://h/img/SHA256SUMS' }), NODE, deps(sums))).checksum).toBe(
      `sha256:${'c'.repeat(64)}`,
    );
    expect(checksumFromFile(`SHA256 (disk.raw.zst) = ${SHA}\n`, 'u', 'http://h/disk.raw.zst')).toBe(SHA);
    expect(checksumFromFile(`${SHA}\n`, 'u', 'http://h/disk.raw.zst')).toBe(SHA);
    expect(() => checksumFromFile(`${SHA}  other\nx y\n`, 'http://h/S', 'http://h/disk.raw.zst')).toThrow(
      /lists no digest for disk\.raw\.zst/,
    );
    await expect(imageInfoDeployInput(info({ checksum: 'd'.repeat(32) }), NODE, deps())).rejects.toThrow(/not md5/);
    // sha512 (Glance's default os_hash_algo), as os_hash_* or as a legacy checksum
    expect((await imageInfoDeployInput(info({ checksum: 'E'.repeat(128) }), NODE, deps())).checksum).toBe(
      `sha512:${'e'.repeat(128)}`,
    );
    expect(
      (await imageInfoDeployInput(info({ os_hash_algo: 'SHA512', os_hash_value: 'a'.repeat(128) }), NODE, deps()))
        .checksum,
    ).toBe(`sha512:${'a'.repeat(128)}`);
    await expect(
      imageInfoDeployInput(info({ os_hash_algo: 'sha512', os_hash_value: 'a'.repeat(64) }), NODE, deps()),
    ).rejects.toThrow(/os_hash_value is not 128 hex digits/);
    await expect(imageInfoDeployInput(info({}), NODE, deps())).rejects.toThrow(/no checksum/);
    await expect(imageInfoDeployInput(info({ checksum: SHA, disk_format: 'vmdk' }), NODE, deps())).rejects.toThrow(
      /disk_format vmdk/,
    );
    await expect(
      imageInfoDeployInput(info({ checksum: SHA, image_type: 'partition', root_mb: 10240 }), NODE, deps()),
    ).rejects.toThrow(/partition image/);
    await expect(imageInfoDeployInput(info({ checksum: SHA }), { uuid: NODE.uuid }, deps())).rejects.toThrow(
      /no root device hints/,
    );
    await expect(
      imageInfoDeployInput({ image_info: { urls: ['file:///srv/disk.raw'], checksum: SHA } }, NODE, deps()),
    ).rejects.toThrow(/over http\(s\)/);
    expect((await imageInfoDeployInput(info({ checksum: SHA, disk_format: 'raw.zst' }), NODE, deps())).format).toBe(
      'raw.zst',
    );
  });

  it("config drive: Ironic's gzip+base64 ISO becomes config-2 files; so does the JSON form", async () => {
    const meta = { uuid: 'inst-1', hostname: 'web-1', public_keys: { k: 'ssh-ed25519 AAAA' } };
    const network = { links: [], networks: [], services: [] };
    const cd = path.join(tmp, 'cd-src');
    await mkdir(path.join(cd, 'openstack/latest'), { recursive: true });
    await mkdir(path.join(cd, 'ec2/latest'), { recursive: true });
    await writeFile(path.join(cd, 'openstack/latest/meta_data.json'), JSON.stringify(meta));
    await writeFile(path.join(cd, 'openstack/latest/user_data'), '#cloud-config\nhostname: web-1\n');
    await writeFile(path.join(cd, 'openstack/latest/network_data.json'), JSON.stringify(network));
    await writeFile(path.join(cd, 'ec2/latest/meta-data.json'), '{}');
    let iso: Buffer | undefined;
    try {
      const out = path.join(tmp, 'cd.iso');
      // as Ironic builds it (genisoimage -J -r -V config-2), here with xorriso's mkisofs
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-J', '-r', '-V', 'config-2', '-o', out, cd], {
        stdio: 'ignore',
      });
      iso = await readFile(out);
    } catch {
      // no xorriso here: the JSON form below still runs
    }
    if (iso) {
      expect(
        readIso(iso)
          .map((f) => f.path)
          .sort(),
      ).toEqual([
        'ec2/latest/meta-data.json',
        'openstack/latest/meta_data.json',
        'openstack/latest/network_data.json',
        'openstack/latest/user_data',
      ]);
      const encoded = gzipSync(iso).toString('base64');
      const input = await imageInfoDeployInput(
        { image_info: { urls: ['http://h/disk.raw'], checksum: SHA }, configdrive: encoded },
        NODE,
        deps(),
      );
      expect(input.configDrive).toMatchObject({ configDriveFlavor: 'config-2', configDriveFs: 'iso9660' });
      expect(JSON.parse(await readFile(input.configDrive.metaData!, 'utf8'))).toEqual(meta);
      expect(await readFile(input.configDrive.userData!, 'utf8')).toBe('#cloud-config\nhostname: web-1\n');
      expect(JSON.parse(await readFile(input.configDrive.networkConfig!, 'utf8'))).toEqual(network);
      // the same by URL
      const byUrl = await configDriveFlags('http://h/cd', path.join(tmp, 'cd-url'), async () => Buffer.from(encoded));
      expect(JSON.parse(await readFile(byUrl.metaData!, 'utf8'))).toEqual(meta);
    }
    const json = await configDriveFlags(
      { meta_data: meta, user_data: '#cloud-config\n', network_data: network },
      path.join(tmp, 'cd-json'),
      async () => Buffer.alloc(0),
    );
    expect(JSON.parse(await readFile(json.metaData!, 'utf8'))).toEqual(meta);
    await expect(
      configDriveFlags({ meta_data: { hostname: 'x' } }, path.join(tmp, 'cd-bad'), async () => Buffer.alloc(0)),
    ).rejects.toThrow(/has no uuid/);
    await expect(
      configDriveFlags(gzipSync(Buffer.alloc(40_000)).toString('base64'), path.join(tmp, 'cd-bad'), async () =>
        Buffer.alloc(0),
      ),
    ).rejects.toThrow(/not an ISO 9660 image/);
  });

  it("deploy.bareon_deploy: its args are a bareon job; the node's hints and config drive fill in", async () => {
    const args = {
      source: 'http://h/rootfs.tar.zst',
      checksum: `sha256:${SHA}`,
      layout: {
        disks: [
          {
            id: 'disk',
            table: 'gpt',
            partitions: [{ type: 'linux', size: 'remaining', fs: { type: 'ext4', label: 'root' }, mount: '/' }],
          },
        ],
      },
      keep: ['data'],
    };
    const node = { ...NODE, instance_info: { configdrive: { meta_data: { uuid: 'i-2', hostname: 'db-1' } } } };
    const input = await bareonStepDeployInput(args, node, deps());
    expect(input.layout).toMatchObject({ file: 'deploy step bareon_deploy' });
    expect(input).toMatchObject({
      source: 'http://h/rootfs.tar.zst',
      checksum: `sha256:${SHA}`,
      keepLabels: ['data'],
      targetHints: ['serial=DISK-1'],
      configDrive: { configDriveFlavor: 'config-2' },
    });
    const own = await bareonStepDeployInput({ ...args, target_hints: { wwn: '0x5000' } }, node, deps());
    expect(own.targetHints).toEqual(['wwn=0x5000']);
    await expect(bareonStepDeployInput({ ...args, when_done: 'reboot' }, node, deps())).rejects.toThrow(
      /leave when_done out/,
    );
    await expect(bareonStepDeployInput({ source: 'http://h/x' }, node, deps())).rejects.toThrow(
      /deploy step bareon_deploy/,
    );
    await expect(bareonStepDeployInput({ ...args, layout: { disks: 'none' } }, node, deps())).rejects.toThrow(
      /deploy step bareon_deploy.*layout/,
    );
  });
});
