import path from 'node:path';
import { ValidationError, type Layout, type Profile, shq, writeFileCommand } from 'bareon';
import {
  digestEntries,
  entriesFromLocal,
  type ArchiveEntry,
  APT_ARCHIVE_VOLUME,
  type BuildStep,
  type StepPlan,
  type PackageManager,
} from 'bareon/containers';

/** Packages a bootable image needs, per distro. */
export function bootablePackages(distro: 'debian' | 'ubuntu'): string[] {
  const kernel = distro === 'ubuntu' ? 'linux-image-generic' : 'linux-image-amd64';
  return [
    kernel,
    'systemd-sysv',
    'udev',
    'initramfs-tools',
    'kmod',
    'zstd',
    'e2fsprogs',
    'grub-pc-bin',
    'grub-efi-amd64-bin',
    'ifupdown',
    'isc-dhcp-client',
    'iproute2',
    'netbase',
  ];
}

/** The distribution's signed boot chain: shim (signed by Microsoft's UEFI CA) and GRUB signed by the distribution. */
export const SECURE_BOOT_PACKAGES = ['shim-signed', 'grub-efi-amd64-signed'];

/** The root filesystem type of a layout (what initramfs must be able to fsck), ext4 by default. */
export function rootFsType(layout?: Layout): string {
  for (const disk of layout?.disks ?? [])
    for (const p of disk.partitions) if (p.mount === '/' && p.fs) return p.fs.type;
  return 'ext4';
}

const isCLocale = (locale?: string) => !locale || /^(C|POSIX|C\.UTF-8|C\.utf8)$/i.test(locale);
const isUtc = (tz?: string) => !tz || /^(Etc\/)?UTC$/.test(tz);

/** Packages the profile needs implicitly: kernel and boot tools, sudo, tzdata, locales. */
export function implicitPackages(profile: Profile, pm: PackageManager, distro: 'debian' | 'ubuntu'): string[] {
  const extra: string[] = [];
  if (profile.bootable && pm.name === 'apt') extra.push(...bootablePackages(distro));
  // in the profile's own package step, not the boot layer, so both kinds of image share that layer
  if (profile.bootable && pm.name === 'apt' && profile.secure_boot) extra.push(...SECURE_BOOT_PACKAGES);
  if (profile.users.some((u) => u.sudo)) extra.push('sudo');
  if (profile.users.some((u) => u.ssh_authorized_keys.length > 0) && pm.name === 'apt') extra.push('openssh-server');
  if (!isUtc(profile.timezone)) extra.push('tzdata');
  if (!isCLocale(profile.locale) && pm.name === 'apt') extra.push('locales');
  if (profile.services && (profile.services.enable.length || profile.services.disable.length) && pm.name === 'apt')
    extra.push('systemd');
  return extra;
}

function usersScript(profile: Profile): string {
  const lines: string[] = [];
  for (const u of profile.users) {
    const name = shq(u.name);
    lines.push(`id -u ${name} >/dev/null 2>&1 || useradd -m -s ${shq(u.shell)}${u.uid ? ` -u ${u.uid}` : ''} ${name}`);
    for (const g of u.groups) lines.push(`getent group ${shq(g)} >/dev/null || groupadd ${shq(g)}`);
    if (u.groups.length) lines.push(`usermod -aG ${shq(u.groups.join(','))} ${name}`);
    if (u.password_hash) lines.push(`usermod -p ${shq(u.password_hash)} ${name}`);
    if (u.sudo)
      lines.push(
        writeFileCommand(
          `/etc/sudoers.d/90-bareon-${u.name}`,
          `${u.name} ALL=(ALL:ALL) ${u.password_hash ? '' : 'NOPASSWD: '}ALL\n`,
          '0440',
        ),
      );
    if (u.ssh_authorized_keys.length) {
      lines.push(`home=$(getent passwd ${name} | cut -d: -f6)`);
      lines.push(`install -d -m 0700 -o ${name} -g "$(id -gn ${name})" "$home/.ssh"`);
      lines.push(`printf '%s\\n' ${u.ssh_authorized_keys.map(shq).join(' ')} > "$home/.ssh/authorized_keys"`);
      lines.push(
        `chown ${name}:"$(id -gn ${name})" "$home/.ssh/authorized_keys" && chmod 0600 "$home/.ssh/authorized_keys"`,
      );
    }
  }
  return lines.join('\n');
}

function systemScript(profile: Profile): string {
  const lines: string[] = [];
  if (profile.timezone) {
    const zone = isUtc(profile.timezone) ? 'Etc/UTC' : profile.timezone;
    lines.push(
      `[ -e /usr/share/zoneinfo/${zone} ] || [ ${shq(zone)} = Etc/UTC ] || { echo "unknown timezone ${zone}" >&2; exit 1; }`,
    );
    lines.push(`ln -sf /usr/share/zoneinfo/${zone} /etc/localtime && echo ${shq(zone)} > /etc/timezone`);
  }
  if (profile.locale) {
    if (!isCLocale(profile.locale)) {
      const charset = profile.locale.split('.')[1] ?? 'UTF-8';
      lines.push(
        `grep -q '^${profile.locale} ' /etc/locale.gen 2>/dev/null || echo ${shq(`${profile.locale} ${charset}`)} >> /etc/locale.gen`,
      );
      lines.push('locale-gen');
    }
    lines.push(writeFileCommand('/etc/default/locale', `LANG=${profile.locale}\n`));
  }
  return lines.join('\n');
}

function servicesScript(profile: Profile): string {
  const { enable = [], disable = [] } = profile.services ?? {};
  const lines = [
    'command -v systemctl >/dev/null || { echo "services: systemctl not found; add systemd to packages" >&2; exit 1; }',
  ];
  if (enable.length) lines.push(`systemctl enable ${enable.map(shq).join(' ')}`);
  if (disable.length) lines.push(`systemctl disable ${disable.map(shq).join(' ')}`);
  return lines.join('\n');
}

/** Packages: implicit ones first, then the profile's, without duplicates. */
export function allPackages(profile: Profile, pm: PackageManager, distro: 'debian' | 'ubuntu'): string[] {
  return [...new Set([...implicitPackages(profile, pm, distro), ...profile.packages])];
}

/**
 * The package steps of a profile. A bootable apt profile gets two: the boot layer (kernel, GRUB,
 * systemd…) that every bootable profile on the same base shares from the step cache, then its own
 * packages, so that a profile differing from another only in its packages reinstalls just those
 * (and rebuilds the initramfs only when one of them asks for it, as mdadm or lvm2 do).
 */
export function packageLayers(
  profile: Profile,
  pm: PackageManager,
  distro: 'debian' | 'ubuntu',
): { title: string; packages: string[] }[] {
  const all = allPackages(profile, pm, distro);
  if (!profile.bootable || pm.name !== 'apt') return all.length ? [{ title: 'packages', packages: all }] : [];
  const boot = bootablePackages(distro);
  const rest = all.filter((p) => !boot.includes(p));
  return [{ title: 'packages: boot', packages: boot }, ...(rest.length ? [{ title: 'packages', packages: rest }] : [])];
}

/** Local files named by the profile, as archive entries plus the chmod/chown script. */
async function filesStep(
  profile: Profile,
  profileDir: string,
): Promise<{ entries: ArchiveEntry[]; script: string; digest: string }> {
  const entries: ArchiveEntry[] = [];
  const script: string[] = [];
  for (const [i, f] of profile.files.entries()) {
    const label = `files[${i}] (${f.path})`;
    if (f.content !== undefined)
      entries.push({
        path: f.path.replace(/^\/+/, ''),
        type: 'file',
        mode: f.mode ? parseInt(f.mode, 8) : 0o644,
        content: Buffer.from(f.content),
      });
    else entries.push(...(await entriesFromLocal(path.resolve(profileDir, f.source!), f.path, label)));
    if (f.owner) script.push(`chown -hR ${shq(f.owner)} ${shq(f.path)}`);
    if (f.mode && f.source) script.push(`chmod ${f.mode} ${shq(f.path)}`);
  }
  return { entries, script: script.join('\n') || 'true', digest: await digestEntries(entries) };
}

export type { BuildStep };

/**
 * An apt install that builds each kernel's initramfs once. Left alone, Debian builds it when the
 * kernel is configured and again when dpkg runs the initramfs-tools trigger at the end of the same
 * run, and with MODULES=most each build takes over a minute in a container. INITRD=No makes the
 * kernel's hook skip, the trigger's build (with every package of the step in place) remains, and a
 * kernel that is still without one after the run gets it here.
 */
export function initramfsOnce(install: string): string {
  return [
    `export INITRD=No; { ${install}; } || exit 1`,
    'unset INITRD',
    'if command -v update-initramfs >/dev/null; then for v in $(ls /lib/modules 2>/dev/null); do',
    '  if [ -e "/boot/vmlinuz-$v" ] && [ ! -e "/boot/initrd.img-$v" ]; then update-initramfs -c -k "$v" || exit 1; fi',
    'done; fi',
  ].join('\n');
}

/** Turns a profile into the ordered, cacheable steps of a build. */
export async function planSteps(
  profile: Profile,
  opts: { profileDir: string; pm: PackageManager; distro: 'debian' | 'ubuntu'; layout?: Layout },
): Promise<StepPlan> {
  const { pm } = opts;
  const steps: BuildStep[] = [];
  const digests = new Map<number, string>();
  const prepare: string[] = [];
  if (pm.name === 'apt')
    prepare.push(
      writeFileCommand(
        '/usr/sbin/policy-rc.d',
        '#!/bin/sh\n# bareon: no services start during the build\nexit 101\n',
        '0755',
      ),
    );
  if (profile.bootable)
    prepare.push(writeFileCommand('/etc/initramfs-tools/conf.d/bareon-fstype', `FSTYPE=${rootFsType(opts.layout)}\n`));
  if (prepare.length)
    steps.push({
      kind: 'prepare',
      title: 'prepare',
      options: { pm: pm.name, bootable: profile.bootable, fstype: rootFsType(opts.layout) },
      script: prepare.join('\n'),
    });

  if (profile.repos.length) {
    if (pm.name !== 'apt')
      throw new ValidationError('repos: extra repositories are supported for apt-based images only');
    const entries: ArchiveEntry[] = [];
    for (const repo of profile.repos) {
      const keyPath = `etc/apt/keyrings/bareon-${repo.name}.asc`;
      if (repo.key) entries.push({ path: keyPath, type: 'file', mode: 0o644, content: Buffer.from(repo.key) });
      else if (repo.key_file)
        entries.push({
          ...(
            await entriesFromLocal(
              path.resolve(opts.profileDir, repo.key_file),
              `/${keyPath}`,
              `repos ${repo.name}.key_file`,
            )
          )[0],
          mode: 0o644,
        });
      const signed = repo.key || repo.key_file ? `Signed-By: /${keyPath}\n` : '';
      const sources = `Types: deb\nURIs: ${repo.uri}\nSuites: ${repo.suites.join(' ')}\nComponents: ${repo.components.join(' ')}\n${signed}`;
      entries.push({
        path: `etc/apt/sources.list.d/bareon-${repo.name}.sources`,
        type: 'file',
        mode: 0o644,
        content: Buffer.from(sources),
      });
    }
    digests.set(steps.length, await digestEntries(entries));
    steps.push({
      kind: 'repos',
      title: `repos: ${profile.repos.map((r) => r.name).join(', ')}`,
      options: profile.repos.map((r) => r.name),
      script: 'true',
      archive: entries,
    });
  }

  const cacheVolumes =
    pm.name === 'apt' ? [{ volume: APT_ARCHIVE_VOLUME, target: '/var/cache/apt/archives' }] : undefined;
  for (const layer of packageLayers(profile, pm, opts.distro)) {
    const script =
      profile.bootable && pm.name === 'apt' ? initramfsOnce(pm.install(layer.packages)) : pm.install(layer.packages);
    steps.push({
      kind: 'packages',
      title: `${layer.title} (${layer.packages.length})`,
      options: { pm: pm.name, packages: layer.packages },
      script,
      cacheVolumes,
    });
  }

  if (profile.files.length) {
    const files = await filesStep(profile, opts.profileDir);
    digests.set(steps.length, files.digest);
    steps.push({
      kind: 'files',
      title: `files (${profile.files.length})`,
      options: profile.files.map(({ content: _c, ...f }) => f),
      script: files.script,
      archive: files.entries,
    });
  }
  if (profile.users.length)
    steps.push({
      kind: 'users',
      title: `users: ${profile.users.map((u) => u.name).join(', ')}`,
      options: profile.users,
      script: usersScript(profile),
    });
  if (profile.timezone || profile.locale)
    steps.push({
      kind: 'system',
      title: 'timezone and locale',
      options: { timezone: profile.timezone, locale: profile.locale },
      script: systemScript(profile),
    });
  if (profile.services && (profile.services.enable.length || profile.services.disable.length)) {
    steps.push({ kind: 'services', title: 'services', options: profile.services, script: servicesScript(profile) });
  }
  profile.run.forEach((command, i) =>
    steps.push({
      kind: 'run',
      title: `run[${i}]: ${command.split('\n')[0].slice(0, 60)}`,
      options: command,
      script: command,
    }),
  );
  steps.push({
    kind: 'finalize',
    title: 'finalize',
    options: { pm: pm.name },
    script: `${pm.clean}\nrm -f /usr/sbin/policy-rc.d`,
  });
  return { steps, digests };
}
