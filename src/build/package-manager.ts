import { shq } from '../core/shell.js';

export type PackageManagerName = 'apt' | 'apk' | 'dnf';

/** How one package manager installs packages and cleans up, as shell. */
export interface PackageManager {
  name: PackageManagerName;
  install(packages: string[]): string;
  clean: string;
}

const quoted = (packages: string[]) => packages.map(shq).join(' ');

export const PACKAGE_MANAGERS: Record<PackageManagerName, PackageManager> = {
  apt: {
    name: 'apt',
    // /var/cache/apt/archives is the shared archive cache volume: keep what was downloaded there,
    // drop only the package caches, which would otherwise be committed into the image
    install: (p) =>
      'export DEBIAN_FRONTEND=noninteractive; apt-get update -q && ' +
      `apt-get install -y -q --no-install-recommends -o APT::Keep-Downloaded-Packages=true -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${quoted(p)} && rm -f /var/cache/apt/*.bin`,
    clean: 'apt-get clean',
  },
  apk: { name: 'apk', install: (p) => `apk add --no-cache ${quoted(p)}`, clean: 'true' },
  dnf: {
    name: 'dnf',
    install: (p) => `dnf install -y --setopt=install_weak_deps=False ${quoted(p)} && dnf clean all`,
    clean: 'dnf clean all',
  },
};

/** Prints "apt", "apk" or "dnf" inside an image, whichever it has. */
export const DETECT_PACKAGE_MANAGER =
  'if command -v apt-get >/dev/null; then echo apt; elif command -v apk >/dev/null; then echo apk; elif command -v dnf >/dev/null; then echo dnf; else echo none; fi';
