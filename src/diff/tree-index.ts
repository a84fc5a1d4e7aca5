import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { InstalledPackage } from '../objects/artifact.js';
import { parsePackageDatabase } from '../rootfs/packages.js';
import { lazyPackage } from '../core/lazy-package.js';

/** tar-stream loads with the first archive read or written. */
const tar = lazyPackage<typeof import('tar-stream')>('tar-stream');

/** One entry of a root filesystem tarball, as `bareon diff` compares it. */
export interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since 1970. */
  mtime: number;
  linkname?: string;
  /** sha256 of the content (regular files). */
  digest?: string;
  /** sha256 of the PAX xattr records (file capabilities, ACLs), when there are any. */
  xattrs?: string;
}

export interface TreeIndex {
  entries: Map<string, TreeEntry>;
  packages?: InstalledPackage[];
}

const PACKAGE_DATABASES = new Set(['var/lib/dpkg/status', 'lib/apk/db/installed']);

/** Indexes a tar stream: every entry's metadata and content digest; memory grows with entries, not bytes. */
export async function indexTree(stream: Readable): Promise<TreeIndex> {
  const entries = new Map<string, TreeEntry>();
  let packages: InstalledPackage[] | undefined;
  const extract = tar().extract();
  extract.on('entry', (header, body, next) => {
    const name = `/${header.name.replace(/^(\.\/|\/)+/, '').replace(/\/$/, '')}`;
    const hash = createHash('sha256');
    const keep = PACKAGE_DATABASES.has(name.slice(1));
    const chunks: Buffer[] = [];
    body.on('data', (data) => {
      const c = data as Buffer;
      hash.update(c);
      if (keep) chunks.push(c);
    });
    body.on('end', () => {
      const pax = (header as { pax?: Record<string, string> }).pax ?? {};
      const xattrKeys = Object.keys(pax)
        .filter((k) => k.startsWith('SCHILY.xattr.'))
        .sort();
      entries.set(name, {
        type: header.type ?? 'file',
        mode: (header.mode ?? 0) & 0o7777,
        uid: header.uid ?? 0,
        gid: header.gid ?? 0,
        size: header.size ?? 0,
        mtime: Math.floor((header.mtime?.getTime() ?? 0) / 1000),
        ...(header.linkname ? { linkname: header.linkname } : {}),
        ...(header.type === 'file' || header.type === 'contiguous-file' ? { digest: hash.digest('hex') } : {}),
        ...(xattrKeys.length
          ? {
              xattrs: createHash('sha256')
                .update(xattrKeys.map((k) => `${k}=${pax[k]}`).join('\n'))
                .digest('hex'),
            }
          : {}),
      });
      if (keep) packages = parsePackageDatabase(name.slice(1), Buffer.concat(chunks).toString('utf8'));
      next();
    });
    body.resume();
  });
  await pipeline(stream, extract);
  return { entries, packages };
}
