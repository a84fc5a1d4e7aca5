import { z } from 'zod';

/** What first-boot hygiene removes from every exported root filesystem, item by item. */
export const HYGIENE_ITEMS = [
  'ssh_host_keys',
  'machine_id',
  'random_seed',
  'apt',
  'logs',
  'backups',
  'caches',
] as const;
export type HygieneItem = (typeof HYGIENE_ITEMS)[number];

/** `hygiene:` in a profile: every item is removed unless set to `keep` (for the rare appliance that wants it). */
export const HygieneSchema = z.strictObject(
  Object.fromEntries(HYGIENE_ITEMS.map((k) => [k, z.enum(['remove', 'keep']).default('remove')])) as Record<
    HygieneItem,
    z.ZodDefault<z.ZodEnum<{ remove: 'remove'; keep: 'keep' }>>
  >,
);
export type Hygiene = z.infer<typeof HygieneSchema>;

/** Which item a path of the root filesystem (no leading "/") falls under, if any. Regular files only. */
export function hygieneItem(name: string): HygieneItem | undefined {
  if (name.endsWith('/')) return undefined; // a directory
  if (/^etc\/ssh\/ssh_host_[^/]*_key(\.pub)?$/.test(name)) return 'ssh_host_keys';
  if (name === 'var/lib/dbus/machine-id') return 'machine_id';
  if (name === 'var/lib/systemd/random-seed') return 'random_seed';
  if (
    /^var\/lib\/apt\/lists\/./.test(name) ||
    /^var\/cache\/apt\/(archives\/(partial\/)?[^/]+\.deb|[^/]+\.bin)$/.test(name)
  )
    return 'apt';
  if (/^var\/log\/apt\/[^/]+$/.test(name) || name === 'var/log/dpkg.log' || name === 'var/log/alternatives.log')
    return 'logs';
  if (/^var\/(cache\/debconf|lib\/dpkg)\/[^/]+-old$/.test(name)) return 'backups';
  if (name === 'var/cache/ldconfig/aux-cache') return 'caches'; // inode numbers and ctimes of the build host
  return undefined;
}

/**
 * A drop-in for Debian's ssh.service: the image carries no host keys, so `ssh-keygen -A` makes the
 * missing ones before sshd's config test, on every boot (it does nothing once they exist). ssh
 * works on first boot without cloud-init.
 */
export const SSH_KEYGEN_DROPIN = {
  name: 'etc/systemd/system/ssh.service.d/bareon-host-keys.conf',
  content:
    '# Written by bareon: images carry no SSH host keys; make the missing ones before sshd starts.\n[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n',
};
