import { createSocket } from 'node:dgram';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { BareonError } from '../../core/errors.js';

/** One HTTP request and its answer, as the client needs them: small JSON bodies only. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'HEAD';
  url: string;
  headers?: Record<string, string>;
  body?: string;
}
export interface HttpResponse {
  status: number;
  body: string;
}
/** Sends a request; rejects only when no answer came (connection refused, timeout). */
export type HttpFetch = (req: HttpRequest, signal?: AbortSignal) => Promise<HttpResponse>;

/** The largest answer read from Ironic: a lookup holds a node, nowhere near this. */
const BODY_MAX = 16 * 1024 * 1024;

/** An HttpFetch on node:http and node:https. `insecure` skips the TLS certificate check. */
export function nodeHttpFetch(opts: { timeoutMs?: number; insecure?: boolean } = {}): HttpFetch {
  return (req, signal) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const url = new URL(req.url);
      const mod = url.protocol === 'https:' ? https : http;
      const body = req.body === undefined ? undefined : Buffer.from(req.body);
      const r = mod.request(
        url,
        {
          method: req.method,
          headers: { ...req.headers, ...(body ? { 'Content-Length': String(body.length) } : {}) },
          timeout: opts.timeoutMs ?? 30_000,
          signal,
          ...(url.protocol === 'https:' ? { rejectUnauthorized: !opts.insecure } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > BODY_MAX) res.destroy(new Error(`answer larger than ${BODY_MAX} bytes`));
            else chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        },
      );
      r.on('timeout', () => r.destroy(new Error(`no answer within ${(opts.timeoutMs ?? 30_000) / 1000} s`)));
      r.on('error', reject);
      r.end(body);
    });
}

/** This machine's MAC addresses, from /sys/class/net: Ethernet interfaces only (no loopback, no zero MAC). */
export async function listMacs(sysNet = '/sys/class/net'): Promise<string[]> {
  const names = await readdir(sysNet).catch(() => [] as string[]);
  const macs: string[] = [];
  for (const name of names.sort()) {
    if (name === 'lo') continue;
    const read = (f: string) =>
      readFile(path.join(sysNet, name, f), 'utf8').then(
        (s) => s.trim(),
        () => undefined,
      );
    const type = await read('type');
    // ARPHRD_ETHER is 1; bridges, bonds and VLANs are 1 too, but carry a member's MAC
    if (type !== undefined && type !== '1') continue;
    const mac = (await read('address'))?.toLowerCase();
    if (mac && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) && mac !== '00:00:00:00:00:00' && !macs.includes(mac))
      macs.push(mac);
  }
  return macs;
}

/**
 * The local address this machine sends from to reach `host` (the routing table's choice): what
 * Ironic will reach the agent at when no advertise host is given. A connected UDP socket sends nothing.
 */
export function routeSourceAddress(host: string, port = 6385): Promise<string> {
  return new Promise((resolve, reject) => {
    const family = host.includes(':') ? 'udp6' : 'udp4';
    const sock = createSocket(family);
    sock.on('error', (err) => {
      sock.close();
      reject(err);
    });
    sock.connect(port, host.replace(/^\[|\]$/g, ''), () => {
      const { address } = sock.address();
      sock.close();
      resolve(address);
    });
  });
}

/** The part of a node that lookup returns. */
export interface IronicNode {
  uuid: string;
  properties?: Record<string, unknown>;
  instance_info?: Record<string, unknown>;
  driver_internal_info?: Record<string, unknown>;
}

export interface LookupResult {
  node: IronicNode;
  config: {
    /** Seconds within which Ironic expects the next heartbeat. */
    heartbeat_timeout?: number;
    /** The secret every heartbeat carries and every command must bring ("******": handed out before). */
    agent_token?: string | null;
    agent_token_required?: boolean;
    [key: string]: unknown;
  };
}

/** Ironic answered, but not as hoped: the status and Ironic's own message. */
export class IronicApiError extends BareonError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Ironic's error text from an error body: {"error_message": "{\"faultstring\": …}"} (a JSON string inside JSON). */
export function ironicFault(body: string): string {
  try {
    const outer = JSON.parse(body) as { error_message?: unknown; faultstring?: unknown };
    let inner: unknown = outer.error_message ?? outer;
    if (typeof inner === 'string') {
      const text = inner;
      try {
        inner = JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    }
    const fault = (inner as { faultstring?: unknown }).faultstring;
    if (typeof fault === 'string') return fault;
  } catch {
    // not JSON: the text itself
  }
  return body.trim().slice(0, 500) || '(no message)';
}

/**
 * The API version the agent asks for: 1.68 has every ramdisk field bareon sends (lookup and
 * heartbeat from 1.22, agent_version 1.36, agent tokens 1.62, agent_verify_ca 1.68). Without the
 * header Ironic answers as its oldest version, which has no lookup at all.
 */
export const IRONIC_API_VERSION = '1.68';

export interface HeartbeatFields {
  callbackUrl: string;
  agentToken: string;
  agentVersion: string;
  agentVerifyCa?: string;
  /** Only from API 1.72 (anaconda's ramdisk uses it): start, end or error. */
  agentStatus?: 'start' | 'end' | 'error';
  agentStatusMessage?: string;
}

type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

const defaultSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** The ramdisk side of Ironic's API: lookup and heartbeat. */
export class IronicClient {
  private readonly fetch: HttpFetch;
  private readonly apiUrl: string;
  private readonly apiVersion: string;
  private readonly sleep: Sleep;
  private readonly log: (text: string) => void;

  constructor(opts: {
    apiUrl: string;
    fetch?: HttpFetch;
    apiVersion?: string;
    sleep?: Sleep;
    log?: (text: string) => void;
  }) {
    this.apiUrl = opts.apiUrl.replace(/\/+$/, '');
    this.fetch = opts.fetch ?? nodeHttpFetch();
    this.apiVersion = opts.apiVersion ?? IRONIC_API_VERSION;
    this.sleep = opts.sleep ?? defaultSleep;
    this.log = opts.log ?? (() => {});
  }

  private headers(): Record<string, string> {
    return {
      Accept: 'application/json',
      'Content-Type': 'application/json',
      'X-OpenStack-Ironic-API-Version': this.apiVersion,
    };
  }

  /** One lookup: GET /v1/lookup?addresses=MAC,MAC[&node_uuid=UUID]. Throws IronicApiError on an error answer. */
  async lookupOnce(macs: string[], nodeUuid?: string, signal?: AbortSignal): Promise<LookupResult> {
    const q = new URLSearchParams();
    if (macs.length) q.set('addresses', macs.join(','));
    if (nodeUuid) q.set('node_uuid', nodeUuid);
    const url = `${this.apiUrl}/v1/lookup?${q.toString()}`;
    const res = await this.fetch({ method: 'GET', url, headers: this.headers() }, signal);
    if (res.status !== 200)
      throw new IronicApiError(res.status, `lookup: Ironic answered ${res.status}: ${ironicFault(res.body)}`);
    let data: LookupResult;
    try {
      data = JSON.parse(res.body) as LookupResult;
    } catch {
      throw new IronicApiError(res.status, `lookup: Ironic's answer is not JSON: ${res.body.slice(0, 200)}`);
    }
    if (!data?.node?.uuid || typeof data.config !== 'object' || data.config === null)
      throw new IronicApiError(
        res.status,
        `lookup: Ironic's answer has no node.uuid or config: ${res.body.slice(0, 200)}`,
      );
    return data;
  }

  /**
   * Looks the node up until Ironic knows it (it answers 404 until the node waits for its agent, and
   * the network may still be coming up), for `timeoutMs` at most, `intervalMs` apart (doubling up to
   * 30 s). The last failure is in the error.
   */
  async lookup(opts: {
    macs: string[];
    nodeUuid?: string;
    timeoutMs: number;
    intervalMs: number;
    signal?: AbortSignal;
  }): Promise<LookupResult> {
    if (!opts.macs.length && !opts.nodeUuid)
      throw new BareonError('lookup: this machine has no Ethernet MAC address to look its node up by', {
        hint: 'give the node UUID on the kernel command line: bareon.ironic-node-uuid=UUID',
      });
    const deadline = Date.now() + opts.timeoutMs;
    let wait = opts.intervalMs;
    let last = '';
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.lookupOnce(opts.macs, opts.nodeUuid, opts.signal);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        last = (err as Error).message;
        if (attempt === 1 || attempt % 10 === 0) this.log(`${last} (trying again)`);
      }
      if (Date.now() + wait > deadline)
        throw new BareonError(
          `lookup: Ironic at ${this.apiUrl} found no node for ${opts.macs.join(', ') || opts.nodeUuid} within ${Math.round(opts.timeoutMs / 1000)} s: ${last}`,
          {
            hint: "enroll a port with one of these MACs on the node, and set the node deploying or cleaning (Ironic's lookup answers only then)",
          },
        );
      await this.sleep(wait, opts.signal);
      wait = Math.min(wait * 2, 30_000);
    }
  }

  /** POST /v1/heartbeat/{node}: Ironic answers 202. Throws IronicApiError otherwise. */
  async heartbeat(node: string, f: HeartbeatFields, signal?: AbortSignal): Promise<void> {
    const body: Record<string, string> = {
      callback_url: f.callbackUrl,
      agent_token: f.agentToken,
      agent_version: f.agentVersion,
    };
    if (f.agentVerifyCa) body.agent_verify_ca = f.agentVerifyCa;
    if (f.agentStatus) body.agent_status = f.agentStatus;
    if (f.agentStatusMessage) body.agent_status_message = f.agentStatusMessage;
    const res = await this.fetch(
      {
        method: 'POST',
        url: `${this.apiUrl}/v1/heartbeat/${encodeURIComponent(node)}`,
        headers: this.headers(),
        body: JSON.stringify(body),
      },
      signal,
    );
    if (res.status < 200 || res.status >= 300)
      throw new IronicApiError(res.status, `heartbeat: Ironic answered ${res.status}: ${ironicFault(res.body)}`);
  }
}

/**
 * The token the agent uses from a lookup's answer. Ironic hands a node's token out once: a second
 * lookup gets "******" back, and only a token given before the boot (virtual media) can stand in.
 */
export function agentTokenOf(result: LookupResult, pregenerated?: string): string {
  const token = result.config.agent_token;
  if (token && token !== '******') return token;
  if (pregenerated) return pregenerated;
  if (token === '******')
    throw new BareonError(
      `lookup: Ironic handed node ${result.node.uuid}'s agent token to an earlier lookup, and gives it out once`,
      {
        hint: 'an agent restarted after its lookup: abort and redo the deploy (or clean) so Ironic makes a new token',
      },
    );
  throw new BareonError(`lookup: Ironic's answer for node ${result.node.uuid} holds no agent token`, {
    hint: `Ironic gives tokens from API version 1.62; this agent asks for ${IRONIC_API_VERSION}`,
  });
}

/**
 * Heartbeats to Ironic while the agent runs: every 0.3 to 0.6 of Ironic's heartbeat_timeout (as
 * ironic-python-agent does, so that a lost heartbeat or two do not time the node out), and at once
 * after `force()`, which the agent calls when a command ends: Ironic acts on a step's end only
 * when a heartbeat arrives.
 */
export class Heartbeater {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  /** How many heartbeats Ironic took, and the last failure (for the console and tests). */
  sent = 0;
  lastError?: string;

  constructor(
    private readonly opts: {
      client: IronicClient;
      node: string;
      fields: () => HeartbeatFields;
      /** Seconds, from lookup's config.heartbeat_timeout. */
      timeoutS: number;
      log?: (text: string) => void;
      random?: () => number;
    },
  ) {}

  private interval(): number {
    const r = this.opts.random ?? Math.random;
    return Math.max(1000, this.opts.timeoutS * 1000 * (0.3 + 0.3 * r()));
  }

  start(): void {
    this.stopped = false;
    this.force();
  }

  /** Heartbeats now (or right after the one in flight), then on the usual schedule. */
  force(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.beat().finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.force();
      } else {
        // after a failure try again sooner, but not in a tight loop
        const next = this.lastError ? Math.min(this.interval(), 5000) : this.interval();
        this.timer = setTimeout(() => this.force(), next);
        this.timer.unref?.();
      }
    });
  }

  private async beat(): Promise<void> {
    try {
      await this.opts.client.heartbeat(this.opts.node, this.opts.fields());
      this.sent++;
      if (this.lastError) this.opts.log?.('heartbeat: Ironic takes heartbeats again');
      this.lastError = undefined;
    } catch (err) {
      const text = (err as Error).message;
      if (text !== this.lastError) this.opts.log?.(text);
      this.lastError = text;
    }
  }

  /** Stops the schedule; waits for a heartbeat in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}

/** A URL's bytes over node:http(s) (a checksum file, a config drive); an answer other than 200 is an error. */
export function fetchUrlBytes(
  url: string,
  opts: { timeoutMs?: number; insecure?: boolean; max?: number } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const max = opts.max ?? 64 * 2 ** 20;
    const r = mod.get(
      u,
      { timeout: opts.timeoutMs ?? 60_000, ...(u.protocol === 'https:' ? { rejectUnauthorized: !opts.insecure } : {}) },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new BareonError(`${url}: the server answered ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > max) res.destroy(new BareonError(`${url}: larger than ${max} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => resolve(Buffer.concat(chunks)));
      },
    );
    r.on('timeout', () =>
      r.destroy(new BareonError(`${url}: no answer within ${(opts.timeoutMs ?? 60_000) / 1000} s`)),
    );
    r.on('error', reject);
  });
}
