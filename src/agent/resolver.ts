import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Where systemd-networkd keeps its DHCP leases, one file per interface. */
const LEASES = '/run/systemd/netif/leases';

/** The DNS servers of every DHCP lease in `dir` (lines `DNS=a b`). */
export async function dhcpDnsServers(dir = LEASES): Promise<string[]> {
  const servers = new Set<string>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const text = await readFile(path.join(dir, name), 'utf8').catch(() => '');
    for (const m of text.matchAll(/^DNS=(.+)$/gm)) for (const s of m[1].trim().split(/\s+/)) servers.add(s);
  }
  return [...servers];
}

/**
 * The agent has systemd-networkd but no resolver service: when /etc/resolv.conf names no server,
 * it is written from the DHCP leases, so that job and source URLs may use host names. Returns
 * the servers written, if any.
 */
export async function resolverFromDhcp(resolvConf = '/etc/resolv.conf', leases = LEASES): Promise<string[]> {
  const current = await readFile(resolvConf, 'utf8').catch(() => '');
  if (/^\s*nameserver\s/m.test(current)) return [];
  const servers = await dhcpDnsServers(leases);
  if (!servers.length) return [];
  // it may be a dangling link to a resolver's runtime file: replace the link, not its target
  await rm(resolvConf, { force: true });
  await writeFile(
    resolvConf,
    `# written by bareon agent from the DHCP lease\n${servers.map((s) => `nameserver ${s}`).join('\n')}\n`,
  );
  return servers;
}
