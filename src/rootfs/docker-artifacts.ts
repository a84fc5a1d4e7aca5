import { hygieneItem, SSH_KEYGEN_DROPIN, type Hygiene } from '../objects/hygiene.js';
import type { TarDecision, TarEntryInfo, TarFilterOptions } from './tar-filter.js';

/** What an exported root filesystem should say about itself where Docker's bind mounts hid the truth. */
export interface RootfsIdentity {
  hostname: string;
  /** First-boot hygiene; every item removed when absent. */
  hygiene?: Hygiene;
  /** SOURCE_DATE_EPOCH: timestamps in the export are clamped to it. */
  epoch?: number;
}

export function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`;
}

const RESOLV_CONF = '# Written by bareon. The network configuration (DHCP, cloud-init) fills this in at boot.\n';

/**
 * The rules that turn `docker export` into a clean root filesystem:
 * - `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` were bind mounts (empty in the export): written;
 * - `/.dockerenv`, Podman's `/run/.containerenv`, apt lists and the build-time `policy-rc.d` are
 *   dropped, and `/dev/console` is the 5:1 node a bootstrap makes, whichever engine exported it;
 * - `/etc/machine-id` is emptied, so each deployed machine generates its own at first boot;
 * - first-boot hygiene (see hygiene.ts): SSH host keys, the D-Bus machine-id copy, the random seed,
 *   apt lists and archives, build logs and `*-old` backups are dropped, each unless kept; with the
 *   host keys gone, a drop-in makes sshd generate them at boot. `removed` lists what was dropped.
 * `/var/lib/dpkg/status` and `/lib/apk/db/installed` are captured for the package list.
 */
export function dockerArtifactRules(
  identity: RootfsIdentity,
  removed: string[] = [],
): Pick<TarFilterOptions, 'decide' | 'append'> {
  const replacements: Record<string, string> = {
    'etc/hostname': `${identity.hostname}\n`,
    'etc/hosts': hostsFile(identity.hostname),
    'etc/resolv.conf': RESOLV_CONF,
  };
  const seen = new Set<string>();
  let sshd = false;
  return {
    decide(entry: TarEntryInfo): TarDecision {
      const { name, type } = entry;
      if (name === '.dockerenv' || name === 'run/.containerenv' || name === 'usr/sbin/policy-rc.d')
        return { action: 'drop' };
      // Docker leaves an empty file there (a bind-mount target), Podman a node with the container's mode
      if (name === 'dev/console') return { action: 'device', major: 5, minor: 1, mode: 0o600 };
      if (name === 'usr/sbin/sshd') sshd = true;
      const item = type === '0' ? hygieneItem(name) : undefined;
      if (item && identity.hygiene?.[item] !== 'keep') {
        removed.push(`/${name}`);
        return { action: 'drop' };
      }
      if (name in replacements && type === '0') {
        seen.add(name);
        return { action: 'replace', content: Buffer.from(replacements[name]), mode: 0o644 };
      }
      if (name === 'etc/machine-id' && type === '0' && identity.hygiene?.machine_id !== 'keep')
        return { action: 'replace', content: Buffer.alloc(0), mode: 0o444 };
      if (name === 'var/lib/dpkg/status' || name === 'lib/apk/db/installed') return { action: 'keep', capture: true };
      if (name in replacements) seen.add(name); // a symlink (resolv.conf → systemd-resolved) is the image's choice
      return { action: 'keep' };
    },
    append: () => [
      ...Object.entries(replacements)
        .filter(([name]) => !seen.has(name))
        .map(([name, text]) => ({ name, content: Buffer.from(text), mode: 0o644 })),
      ...(sshd && removed.some((r) => r.startsWith('/etc/ssh/ssh_host_'))
        ? [{ name: SSH_KEYGEN_DROPIN.name, content: Buffer.from(SSH_KEYGEN_DROPIN.content), mode: 0o644 }]
        : []),
    ],
  };
}
