import type { InstalledPackage } from '../objects/artifact.js';

/** Installed packages from dpkg's status database (only those in state "install ok installed"). */
export function parseDpkgStatus(text: string): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  for (const stanza of text.split(/\n\n+/)) {
    const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(stanza)?.[1];
    if (field('Status') !== 'install ok installed') continue;
    const name = field('Package');
    if (name) packages.push({ name, version: field('Version') ?? '', arch: field('Architecture') ?? '' });
  }
  return packages.sort((a, b) => a.name.localeCompare(b.name));
}

/** Installed packages from apk's database (P: name, V: version, A: arch). */
export function parseApkInstalled(text: string): InstalledPackage[] {
  return text
    .split(/\n\n+/)
    .map((stanza) => {
      const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(stanza)?.[1] ?? '';
      return { name: field('P'), version: field('V'), arch: field('A') };
    })
    .filter((p) => p.name)
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function parsePackageDatabase(path: string, text: string): InstalledPackage[] {
  return path.endsWith('dpkg/status') ? parseDpkgStatus(text) : parseApkInstalled(text);
}
