import { execa, type ResultPromise } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO } from './cli.js';
import { answerRoute, type Route } from './http-files.js';

/**
 * Where everything meets inside the sandbox's network namespace (on its loopback): Ironic's API
 * (port 6385) and the image server (port 80). Guests reach it through their guestfwd relays; the
 * host never dials it, as no 10.0.2.x address exists outside the namespace.
 */
export const SITE = '10.0.2.100';
export const IRONIC_PORT = 6385;

/** Settings read after the image's /etc/ironic/ironic.conf: where the API listens and what the agent is told. */
const TEST_CONF = `[api]
host_ip = 0.0.0.0
port = ${IRONIC_PORT}

[service_catalog]
endpoint_override = http://${SITE}:${IRONIC_PORT}

[agent]
# a soft power off through the agent is confirmed by polling the (fake) power state: not for long
post_deploy_get_power_state_retries = 1
post_deploy_get_power_state_retry_interval = 1
`;

export interface ApiAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** One request to Ironic's REST API over the sandbox's unix socket (noauth: any caller is admin). */
function request<T>(socketPath: string, method: string, url: string, body?: unknown, version = '1.69') {
  return new Promise<ApiAnswer<T>>((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        socketPath,
        method,
        path: url,
        headers: {
          'X-OpenStack-Ironic-API-Version': version,
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : {};
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * A stock Ironic in a container of its own with no network but its loopback, which carries the
 * sandbox's addresses. Guests run in the same namespace (QEMU under nsenter), with user networking
 * whose guestfwd relays reach Ironic and the image server, and whose hostfwd ports are where Ironic
 * calls each agent back. The test reaches Ironic's API and serves images through unix sockets, as
 * files are what the namespace and the host share.
 */
export class IronicSandbox {
  readonly requests: { method: string; url: string }[] = [];
  private routes: Record<string, Route> = {};
  private relays: ResultPromise[] = [];

  private constructor(
    readonly container: string,
    /** The namespace's file, for nsenter --net= and runVm's netns. */
    readonly netns: string,
    readonly dir: string,
    private readonly site: http.Server,
  ) {}

  /** Starts Ironic from `image` and waits for its API (or throws with its log). */
  static async start(image: string, name: string): Promise<IronicSandbox> {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-ironic-'));
    await writeFile(path.join(dir, 'test.conf'), TEST_CONF);
    const run = await execa('docker', [
      'run',
      '-d',
      '--name',
      `${name}-${process.pid}`,
      '--label',
      'bareon.test=ironic',
      '--network',
      'none',
      '-v',
      `${dir}/test.conf:/run/ironic-test.conf:ro`,
      image,
      'ironic',
      '--config-file',
      '/etc/ironic/ironic.conf',
      '--config-file',
      '/run/ironic-test.conf',
    ]);
    const container = run.stdout.trim();
    const pid = (await execa('docker', ['inspect', '-f', '{{.State.Pid}}', container])).stdout.trim();
    const netns = `/proc/${pid}/ns/net`;
    const site = http.createServer((req, res) => void sandbox.answer(req, res));
    const sandbox = new IronicSandbox(container, netns, dir, site);
    try {
      await execa('nsenter', [`--net=${netns}`, 'ip', 'addr', 'add', `${SITE}/32`, 'dev', 'lo']);
      await new Promise<void>((resolve) => site.listen(path.join(dir, 'site.sock'), resolve));
      await sandbox.relay(`tcp:${SITE}:80`, `unix:${path.join(dir, 'site.sock')}`);
      await sandbox.relay(`unix:${path.join(dir, 'api.sock')}`, `tcp:127.0.0.1:${IRONIC_PORT}`);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const up = await sandbox.api('GET', '/v1').catch(() => undefined);
        if (up?.status === 200) break;
        if (Date.now() > deadline) throw new Error(`Ironic's API did not answer in 60 s:\n${await sandbox.logs()}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (err) {
      await sandbox.close();
      throw err;
    }
    return sandbox;
  }

  /** Runs a relay inside the namespace and waits until it listens. */
  private async relay(listen: string, connect: string): Promise<void> {
    const child = execa('nsenter', [
      `--net=${this.netns}`,
      process.execPath,
      path.join(REPO, 'test/helpers/ns-relay.mjs'),
      listen,
      connect,
    ]);
    child.catch(() => {});
    this.relays.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`ns-relay ${listen} → ${connect} exited (${code})`)));
    });
  }

  /** Serves `routes` (by path) at http://10.0.2.100/ inside the namespace. */
  serve(routes: Record<string, Route>): void {
    this.routes = { ...this.routes, ...routes };
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '' });
    return answerRoute(this.routes, req, res);
  }

  /** A call to Ironic's REST API (version 1.69: deploy_steps on provision). */
  api<T = Record<string, unknown>>(method: string, url: string, body?: unknown): Promise<ApiAnswer<T>> {
    return request<T>(path.join(this.dir, 'api.sock'), method, url, body);
  }

  /** The same as `api`, failing unless Ironic answers 2xx. */
  async call<T = Record<string, unknown>>(method: string, url: string, body?: unknown): Promise<T> {
    const r = await this.api<T>(method, url, body);
    if (r.status < 200 || r.status > 299)
      throw new Error(`Ironic ${method} ${url}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** Enrolls a fake-hardware node with one port and makes it available (or only manageable). Returns its UUID. */
  async enroll(node: Record<string, unknown>, mac: string, until: 'available' | 'manageable' = 'available') {
    const { uuid } = await this.call<{ uuid: string }>('POST', '/v1/nodes', { driver: 'fake-hardware', ...node });
    await this.call('POST', '/v1/ports', { node_uuid: uuid, address: mac });
    await this.move(uuid, 'manage', 'manageable');
    if (until === 'available') await this.move(uuid, 'provide', 'available');
    return uuid;
  }

  /** A provision state change that ends at once (no agent involved), checked. */
  async move(uuid: string, target: string, state: string): Promise<void> {
    await this.call('PUT', `/v1/nodes/${uuid}/states/provision`, { target });
    const node = await this.waitFor(uuid, [state], 60_000);
    if (node.provision_state !== state)
      throw new Error(`node ${uuid}: ${target} left it ${node.provision_state}, not ${state}: ${node.last_error}`);
  }

  /** Sets fields of a node through a JSON patch of "add" operations (path → value). */
  async patch(uuid: string, fields: Record<string, unknown>): Promise<void> {
    const ops = Object.entries(fields).map(([p, value]) => ({ op: 'add', path: p, value }));
    await this.call('PATCH', `/v1/nodes/${uuid}`, ops);
  }

  async node(uuid: string): Promise<Record<string, unknown> & { provision_state: string; last_error: string | null }> {
    return this.call('GET', `/v1/nodes/${uuid}`);
  }

  /** Polls the node until its provision state is one of `states` (or the deadline passes); returns the node. */
  async waitFor(uuid: string, states: string[], timeoutMs: number, signal?: AbortSignal) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const node = await this.node(uuid);
      if (states.includes(node.provision_state) || Date.now() > deadline || signal?.aborted) return node;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** Ironic's log (its stderr), for a failure message. */
  async logs(): Promise<string> {
    const r = await execa('docker', ['logs', '--tail', '200', this.container], { reject: false, all: true });
    return String(r.all);
  }

  /** Stops the relays, the image server and Ironic; the namespace goes with the container. */
  async close(): Promise<void> {
    for (const r of this.relays) r.kill('SIGTERM');
    await Promise.allSettled(this.relays);
    await new Promise<void>((resolve) => this.site.close(() => resolve()));
    await execa('docker', ['rm', '-f', this.container], { reject: false });
    await rm(this.dir, { recursive: true, force: true });
  }
}
