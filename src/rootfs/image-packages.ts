import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { lazyPackage } from '../core/lazy-package.js';
import type { DockerEngine } from '../docker/engine.js';

/** tar-stream loads with the first archive read. */
const tar = lazyPackage<typeof import('tar-stream')>('tar-stream');

/** An installed package as an SBOM describes it: what the package database says, and its declared licenses. */
export interface ImagePackage {
  name: string;
  version: string;
  arch: string;
  /** The source package it was built from (dpkg's Source:, apk's origin), when it says. */
  source?: string;
  /** The source package's version, when it differs from the package's (binNMUs). */
  sourceVersion?: string;
  /** License names: from a machine-readable copyright file (dpkg) or the database's license field (apk). */
  licenses: string[];
}

/** What `/etc/os-release` says of the image's distribution. */
export interface OsRelease {
  id: string;
  versionId?: string;
  prettyName?: string;
}

export interface ImageContents {
  /** The package manager whose database was read, if any. */
  manager?: 'dpkg' | 'apk';
  os?: OsRelease;
  packages: ImagePackage[];
}

/** A field's value and continuation lines stay bounded whatever an image's files hold. */
const MAX_FIELD = 512;
/** Copyright files larger than this are not parsed (Debian's largest are well under it). */
const MAX_COPYRIGHT = 4 * 2 ** 20;
/** A package database larger than this is not read. */
const MAX_DATABASE = 256 * 2 ** 20;

/** The paragraphs of a deb822 document: field names lowercased, continuation lines joined with newlines. */
function deb822(text: string): Map<string, string>[] {
  const paragraphs: Map<string, string>[] = [];
  let current: Map<string, string> | undefined;
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (/^\s*$/.test(line)) {
      current = undefined;
      last = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (/^[ \t]/.test(line)) {
      if (current && last) current.set(last, `${current.get(last)}\n${line.trim()}`.slice(0, MAX_FIELD));
      continue;
    }
    const m = /^([^:\s]+):(.*)$/.exec(line);
    if (!m) continue;
    if (!current) {
      current = new Map();
      paragraphs.push(current);
    }
    last = m[1].toLowerCase();
    current.set(last, m[2].trim().slice(0, MAX_FIELD));
  }
  return paragraphs;
}

/** Installed packages from dpkg's status database, with their source packages (state "install ok installed" only). */
export function parseDpkgPackages(text: string): ImagePackage[] {
  const packages: ImagePackage[] = [];
  for (const p of deb822(text)) {
    const name = p.get('package');
    if (!name || p.get('status') !== 'install ok installed') continue;
    const version = p.get('version') ?? '';
    // "Source: name" or "Source: name (version)" when the binary's version differs (a binNMU)
    const m = /^(\S+)(?:\s+\((\S+)\))?$/.exec(p.get('source') ?? '');
    packages.push({
      name,
      version,
      arch: p.get('architecture') ?? '',
      source: m?.[1] ?? name,
      ...(m?.[2] && m[2] !== version ? { sourceVersion: m[2] } : {}),
      licenses: [],
    });
  }
  return sortPackages(packages);
}

/** Installed packages from apk's database: P name, V version, A arch, o origin, L license. */
export function parseApkPackages(text: string): ImagePackage[] {
  const packages = text
    .split(/\n\n+/)
    .map((stanza) => {
      const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(stanza)?.[1]?.trim().slice(0, MAX_FIELD);
      const license = field('L');
      return {
        name: field('P') ?? '',
        version: field('V') ?? '',
        arch: field('A') ?? '',
        ...(field('o') ? { source: field('o') } : {}),
        licenses: license ? [license] : [],
      };
    })
    .filter((p) => p.name);
  return sortPackages(packages);
}

function sortPackages(packages: ImagePackage[]): ImagePackage[] {
  const key = (p: ImagePackage) => `${p.name}\0${p.arch}`;
  return packages.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * The license names a machine-readable Debian copyright file (DEP-5, "Format:
 * https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/") declares: the first line of
 * the License: field of its header and of each Files paragraph, sorted and without repeats.
 * Undefined for a copyright file in free form, whose licenses only a person can read.
 */
export function dep5Licenses(text: string): string[] | undefined {
  const [header, ...rest] = deb822(text);
  const format = header?.get('format');
  if (!format || !/copyright-format\/1\.0|dep5/i.test(format)) return undefined;
  const names = new Set<string>();
  for (const p of [header, ...rest.filter((r) => r.has('files'))]) {
    const name = p.get('license')?.split('\n')[0].trim();
    if (name) names.add(name);
  }
  return [...names].sort();
}

/** `/etc/os-release`'s ID, VERSION_ID and PRETTY_NAME. */
export function parseOsRelease(text: string): OsRelease | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) fields.set(m[1], m[2].replace(/^(["'])(.*)\1$/, '$2').slice(0, MAX_FIELD));
  }
  const id = fields.get('ID');
  return id
    ? {
        id,
        ...(fields.has('VERSION_ID') ? { versionId: fields.get('VERSION_ID') } : {}),
        ...(fields.has('PRETTY_NAME') ? { prettyName: fields.get('PRETTY_NAME') } : {}),
      }
    : undefined;
}

interface TarItem {
  type: string;
  linkname?: string;
  data?: Buffer;
}

/** The entries of a tar stream, with the content of those `want` names (up to `max` bytes each; larger ones are left out). */
async function readTar(stream: Readable, want: (name: string) => boolean, max: number): Promise<Map<string, TarItem>> {
  const items = new Map<string, TarItem>();
  const extract = tar().extract();
  extract.on('entry', (header, body, next) => {
    const name = header.name.replace(/^(\.\/|\/)+/, '').replace(/\/$/, '');
    const keep = header.type === 'file' && want(name) && (header.size ?? 0) <= max;
    const chunks: Buffer[] = [];
    body.on('data', (c) => {
      if (keep) chunks.push(c as Buffer);
    });
    body.on('end', () => {
      items.set(name, {
        type: header.type ?? 'file',
        ...(header.linkname ? { linkname: header.linkname } : {}),
        ...(keep ? { data: Buffer.concat(chunks) } : {}),
      });
      next();
    });
    body.resume();
  });
  await pipeline(stream, extract);
  return items;
}

/** A file of `items` by path, following symlinks inside the archive (a doc directory that points at another package's). */
function lookup(items: Map<string, TarItem>, file: string): Buffer | undefined {
  let parts = file.split('/');
  for (let hops = 0; hops < 16; hops++) {
    let moved = false;
    for (let i = 1; i <= parts.length; i++) {
      const item = items.get(parts.slice(0, i).join('/'));
      if (item?.type !== 'symlink' || !item.linkname) continue;
      // a link is resolved within the archive's top directory; one that leaves it is not followed
      if (item.linkname.startsWith('/')) return undefined;
      const joined = [...parts.slice(0, i - 1), ...item.linkname.split('/'), ...parts.slice(i)];
      const resolved: string[] = [];
      for (const seg of joined) {
        if (seg === '' || seg === '.') continue;
        if (seg === '..') {
          if (resolved.length <= 1) return undefined;
          resolved.pop();
        } else resolved.push(seg);
      }
      parts = resolved;
      moved = true;
      break;
    }
    if (!moved) return items.get(parts.join('/'))?.data;
  }
  return undefined;
}

/**
 * The licenses each package's machine-readable copyright file declares, from a tar stream of
 * `/usr/share/doc` (entries under `doc/`): a doc directory or copyright file that is a symlink is
 * followed inside the archive, never out of it. A package without one gets no entry.
 */
export async function docArchiveLicenses(stream: Readable, packages: string[]): Promise<Map<string, string[]>> {
  const docs = await readTar(stream, (name) => /^doc\/[^/]+\/copyright$/.test(name), MAX_COPYRIGHT);
  const licenses = new Map<string, string[]>();
  for (const name of packages) {
    const text = lookup(docs, `doc/${name}/copyright`);
    const found = text && dep5Licenses(text.toString('utf8'));
    if (found) licenses.set(name, found);
  }
  return licenses;
}

/**
 * Reads an image's package database, its copyright files and os-release through the Docker API
 * (`GET /containers/…/archive` of a created, never started container): nothing in the image runs.
 * dpkg's licenses come from `/usr/share/doc/<package>/copyright` where it is machine-readable.
 */
export async function readImagePackages(engine: DockerEngine, image: string): Promise<ImageContents> {
  const container = await engine.createContainer({
    image,
    cmd: ['/bin/true'],
    labels: { 'org.bareon.role': 'sbom' },
  });
  const archive = async (path: string) => {
    try {
      return await engine.getArchive(container.id, path);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  };
  const read = async (path: string, max: number) => {
    const stream = await archive(path);
    return stream && (await readTar(stream, () => true, max));
  };
  try {
    const osText =
      (await read('/usr/lib/os-release', 65536))?.get('os-release')?.data ??
      (await read('/etc/os-release', 65536))?.get('os-release')?.data;
    const os = osText && parseOsRelease(osText.toString('utf8'));
    const dpkg = (await read('/var/lib/dpkg/status', MAX_DATABASE))?.get('status')?.data;
    if (dpkg) {
      const packages = parseDpkgPackages(dpkg.toString('utf8'));
      const docs = await archive('/usr/share/doc');
      const licenses = docs
        ? await docArchiveLicenses(
            docs,
            packages.map((p) => p.name),
          )
        : new Map();
      for (const p of packages) p.licenses = licenses.get(p.name) ?? [];
      return { manager: 'dpkg', ...(os ? { os } : {}), packages };
    }
    const apk = (await read('/lib/apk/db/installed', MAX_DATABASE))?.get('installed')?.data;
    if (apk) return { manager: 'apk', ...(os ? { os } : {}), packages: parseApkPackages(apk.toString('utf8')) };
    return { ...(os ? { os } : {}), packages: [] };
  } finally {
    await engine.removeContainer(container.id);
  }
}
