import { ValidationError } from '../../core/errors.js';

/**
 * What the agent needs to speak Ironic's agent protocol, from the kernel command line: the names
 * ironic-python-agent reads (`ipa-api-url`…), so that an Ironic set up for that ramdisk boots
 * bareon's unchanged, and bareon's own spelling of each (`bareon.ironic-api-url`…).
 */
export interface IronicAgentParams {
  /** Ironic's API, without a trailing slash ("http://10.0.0.1:6385"). */
  apiUrl: string;
  /** The address Ironic reaches this agent at; absent, the one this machine routes to the API from. */
  advertiseHost?: string;
  /** Port of the agent API that Ironic calls (the callback URL's port). */
  advertisePort: number;
  /** Where the agent API listens ("::" for every address). */
  listenHost: string;
  listenPort: number;
  /** How long lookup keeps trying before the agent gives up, and how long it waits between tries (ms). */
  lookupTimeoutMs: number;
  lookupIntervalMs: number;
  /** Look the node up by its UUID as well as by MAC (virtual media boots know it). */
  nodeUuid?: string;
  /** A token Ironic generated before the boot (virtual media): used when lookup hands out none. */
  agentToken?: string;
  /** Do not check Ironic's TLS certificate. */
  insecure: boolean;
  /** The MAC the machine booted from (pxelinux's BOOTIF=01-aa-bb-…), tried first at lookup. */
  bootMac?: string;
}

/** The agent API's port when none is given, as with ironic-python-agent. */
export const DEFAULT_AGENT_PORT = 9999;

/**
 * The kernel command line as KEY → VALUE; a bare word maps to "". Values may be double-quoted
 * (`key="a b"`); the last of a repeated key wins, as with the kernel's own parameters.
 */
export function parseCmdline(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([^\s=]+)(?:=("([^"]*)"|\S*))?/g;
  for (const m of text.matchAll(re)) out.set(m[1], m[3] ?? m[2] ?? '');
  return out;
}

/** Each setting: ironic-python-agent's name and bareon's. */
const NAMES = {
  apiUrl: ['ipa-api-url', 'bareon.ironic-api-url'],
  advertiseHost: ['ipa-advertise-host', 'bareon.ironic-advertise-host'],
  advertisePort: ['ipa-advertise-port', 'bareon.ironic-advertise-port'],
  listenHost: ['ipa-listen-host', 'bareon.ironic-listen-host'],
  listenPort: ['ipa-listen-port', 'bareon.ironic-listen-port'],
  lookupTimeout: ['ipa-lookup-timeout', 'bareon.ironic-lookup-timeout'],
  lookupInterval: ['ipa-lookup-interval', 'bareon.ironic-lookup-interval'],
  agentToken: ['ipa-agent-token', 'bareon.ironic-agent-token'],
  insecure: ['ipa-insecure', 'bareon.ironic-insecure'],
  nodeUuid: [undefined, 'bareon.ironic-node-uuid'],
} as const satisfies Record<string, readonly [string | undefined, string]>;

type Setting = keyof typeof NAMES;

function pick(params: Map<string, string>, key: Setting): { name: string; value: string } | undefined {
  const names: readonly (string | undefined)[] = NAMES[key];
  const found = names.flatMap((name) =>
    name !== undefined && params.has(name) ? [{ name, value: params.get(name)! }] : [],
  );
  if (found.length === 2 && found[0].value !== found[1].value)
    throw new ValidationError(
      `kernel command line: ${found[0].name}=${found[0].value} and ${found[1].name}=${found[1].value} disagree`,
      { hint: 'give one of them, or the same value to both' },
    );
  return found[0];
}

function port(p: { name: string; value: string } | undefined, fallback: number): number {
  if (!p) return fallback;
  const n = Number(p.value);
  if (!/^\d+$/.test(p.value) || n < 1 || n > 65535)
    throw new ValidationError(`kernel command line: ${p.name}=${p.value} is not a TCP port (1-65535)`);
  return n;
}

function seconds(p: { name: string; value: string } | undefined, fallback: number): number {
  if (!p) return fallback * 1000;
  if (!/^\d+(\.\d+)?$/.test(p.value))
    throw new ValidationError(`kernel command line: ${p.name}=${p.value} is not a number of seconds`);
  return Number(p.value) * 1000;
}

function bool(p: { name: string; value: string } | undefined): boolean {
  if (!p) return false;
  const v = p.value.toLowerCase();
  if (['', '1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ValidationError(`kernel command line: ${p.name}=${p.value} is neither true nor false`);
}

/** pxelinux's BOOTIF=01-52-54-00-12-34-56 (ARP type 1, then the MAC) as 52:54:00:12:34:56. */
export function bootifMac(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^(?:01-)?((?:[0-9a-f]{2}[-:]){5}[0-9a-f]{2})$/i.exec(value.trim());
  return m ? m[1].replace(/-/g, ':').toLowerCase() : undefined;
}

/**
 * The Ironic settings of a kernel command line, or undefined when it names no Ironic API (the
 * agent then runs a job as before). Every malformed value is a ValidationError naming the parameter.
 */
export function ironicAgentParams(cmdline: string): IronicAgentParams | undefined {
  const params = parseCmdline(cmdline);
  const api = pick(params, 'apiUrl');
  if (!api) return undefined;
  // ironic-python-agent also takes a list, and "mdns" to discover Ironic; bareon takes one URL
  const url = api.value.split(',')[0].trim();
  if (url === 'mdns')
    throw new ValidationError(`kernel command line: ${api.name}=mdns: bareon does not discover Ironic by mDNS`, {
      hint: `give Ironic's API URL, such as ${api.name}=http://10.0.0.1:6385`,
    });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(`kernel command line: ${api.name}=${api.value} is not a URL`, {
      hint: `such as ${api.name}=http://10.0.0.1:6385`,
    });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new ValidationError(`kernel command line: ${api.name}=${api.value}: Ironic's API is reached over http(s)`);
  const advertisePort = port(pick(params, 'advertisePort'), DEFAULT_AGENT_PORT);
  const nodeUuid = pick(params, 'nodeUuid');
  if (nodeUuid && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(nodeUuid.value))
    throw new ValidationError(`kernel command line: ${nodeUuid.name}=${nodeUuid.value} is not a UUID`);
  const lookupTimeoutMs = seconds(pick(params, 'lookupTimeout'), 300);
  const lookupIntervalMs = seconds(pick(params, 'lookupInterval'), 1);
  if (lookupIntervalMs <= 0)
    throw new ValidationError(`kernel command line: the lookup interval must be more than 0 seconds`);
  return {
    apiUrl: url.replace(/\/+$/, ''),
    advertiseHost: pick(params, 'advertiseHost')?.value || undefined,
    advertisePort,
    listenHost: pick(params, 'listenHost')?.value || '::',
    listenPort: port(pick(params, 'listenPort'), advertisePort),
    lookupTimeoutMs,
    lookupIntervalMs,
    nodeUuid: nodeUuid?.value.toLowerCase(),
    agentToken: pick(params, 'agentToken')?.value || undefined,
    insecure: bool(pick(params, 'insecure')),
    bootMac: bootifMac(params.get('BOOTIF')),
  };
}

/** The URL Ironic calls the agent back at; an IPv6 address goes in brackets. */
export function callbackUrl(host: string, port: number): string {
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}
