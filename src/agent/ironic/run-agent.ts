import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DeployInput } from '../../objects/deploy.js';
import { AgentApi } from './agent-api.js';
import { ironicCommands, type IronicCommandDeps } from './commands.js';
import {
  agentTokenOf,
  fetchUrlBytes,
  Heartbeater,
  IronicClient,
  type IronicNode,
  listMacs,
  nodeHttpFetch,
  routeSourceAddress,
} from './ironic-client.js';
import { callbackUrl, type IronicAgentParams } from './kernel-params.js';

/** What running as Ironic's agent needs from the caller: how to deploy, power and log. */
export interface IronicAgentDeps {
  version: string;
  deploy: (input: DeployInput, ctx: { step: string; node: IronicNode }) => Promise<void>;
  /** Powers the machine off or reboots it; undefined leaves the power alone (trying the agent out). */
  power?: (action: 'poweroff' | 'reboot') => Promise<void>;
  logs?: IronicCommandDeps['logs'];
  eraseDevicesMetadata?: IronicCommandDeps['eraseDevicesMetadata'];
  partitionUuids?: IronicCommandDeps['partitionUuids'];
  say: (text: string) => void;
  signal: AbortSignal;
  /** The MACs to look the node up by (default: this machine's Ethernet interfaces). */
  macs?: string[];
}

/**
 * Runs as the deploy ramdisk of an Ironic: looks its node up by MAC, serves the agent API that
 * Ironic sends its commands to, and heartbeats with the callback URL and the token lookup handed
 * out. Resolves when Ironic powers the machine off or reboots it (or, without `power`, when it asks
 * to), or when `signal` aborts.
 */
export async function runIronicAgent(params: IronicAgentParams, deps: IronicAgentDeps): Promise<string> {
  const fetch = nodeHttpFetch({ insecure: params.insecure });
  const client = new IronicClient({ apiUrl: params.apiUrl, fetch, log: deps.say });
  const macs = deps.macs ?? (await listMacs());
  const ordered = params.bootMac ? [params.bootMac, ...macs.filter((m) => m !== params.bootMac)] : macs;
  deps.say(`ironic: looking the node up at ${params.apiUrl} by ${ordered.join(', ') || params.nodeUuid}`);
  const found = await client.lookup({
    macs: ordered,
    nodeUuid: params.nodeUuid,
    timeoutMs: params.lookupTimeoutMs,
    intervalMs: params.lookupIntervalMs,
    signal: deps.signal,
  });
  const token = agentTokenOf(found, params.agentToken);
  const node = found.node;
  let ended: (why: string) => void = () => {};
  const end = new Promise<string>((resolve) => {
    ended = resolve;
  });
  const workDir = await mkdtemp(path.join(tmpdir(), 'bareon-ironic-'));
  const commands = ironicCommands({
    version: deps.version,
    deploy: deps.deploy,
    power: async (action) => {
      deps.say(`ironic: ${action} asked`);
      if (deps.power) await deps.power(action);
      ended(action);
    },
    logs: deps.logs,
    eraseDevicesMetadata: deps.eraseDevicesMetadata,
    partitionUuids: deps.partitionUuids,
    fetchBytes: (url) => fetchUrlBytes(url, { insecure: params.insecure }),
    workDir,
    node,
  });
  let heartbeater: Heartbeater | undefined;
  const api = new AgentApi({
    commands,
    token: () => token,
    version: deps.version,
    onCommandDone: () => heartbeater?.force(),
    log: (text) => deps.say(`ironic: ${text}`),
  });
  const bound = await api.listen(params.listenPort, params.listenHost);
  try {
    const host = params.advertiseHost ?? (await routeSourceAddress(new URL(params.apiUrl).hostname));
    const callback = callbackUrl(host, params.advertisePort || bound.port);
    deps.say(`ironic: node ${node.uuid}; agent API on port ${bound.port}, advertised as ${callback}`);
    heartbeater = new Heartbeater({
      client,
      node: node.uuid,
      fields: () => ({ callbackUrl: callback, agentToken: token, agentVersion: deps.version }),
      timeoutS: Number(found.config.heartbeat_timeout ?? 300),
      log: (text) => deps.say(`ironic: ${text}`),
    });
    heartbeater.start();
    const aborted = new Promise<string>((resolve) =>
      deps.signal.addEventListener('abort', () => resolve('stopped'), { once: true }),
    );
    return await Promise.race([end, aborted]);
  } finally {
    await heartbeater?.stop();
    await api.close();
  }
}
