import { BareonError } from '../core/errors.js';
import type { TarEntryInfo } from './tar-filter.js';

/** A tar entry would land outside the target root. */
export class UnsafeTarEntryError extends BareonError {}

/**
 * GNU tar's arguments for extracting a root filesystem as the deployer does (owners, modes, xattrs
 * and ACLs kept), reading the archive from stdin; the target directory comes last.
 */
export const TAR_EXTRACT_ARGS = [
  '--extract',
  '--numeric-owner',
  '--same-owner',
  '--same-permissions',
  '--xattrs',
  '--xattrs-include=*',
  '--acls',
  '--file=-',
  '--directory',
] as const;

/** Path components as the kernel walks them: "/", "." and empty parts say nothing. */
const components = (path: string) => path.split('/').filter((p) => p !== '' && p !== '.');

/**
 * Returns a `decide` for TarFilter that refuses every entry that could write outside the root it
 * is extracted into: ".." in a name or hardlink target, and any entry reached through a symlink
 * the archive made earlier (link → /etc, then link/passwd), hardlinks through one among them.
 * Names are compared as the bytes GNU tar uses (final names: PAX path, GNU long names) with "."
 * and repeated slashes folded, so "a/./link/x" is seen going through "a/link". Absolute names and
 * hardlink targets land inside the root, as GNU tar strips their leading "/". Symlinks themselves
 * may point anywhere: absolute links are normal in a root filesystem and resolve inside it once
 * booted; a hardlink to a symlink is one more symlink.
 */
export function extractGuard(): (entry: TarEntryInfo) => { action: 'keep' } {
  const symlinks = new Set<string>();
  const refuse = (entry: TarEntryInfo, why: string): never => {
    throw new UnsafeTarEntryError(`unsafe tar entry "${entry.name}": ${why}; nothing outside the target was written`, {
      hint: 'the archive is not a root filesystem bareon will extract; rebuild it',
    });
  };
  /** The first symlink the archive made on the way to `parts` (the last part itself excluded). */
  const throughSymlink = (parts: string[]) => {
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (symlinks.has(prefix)) return prefix;
    }
    return undefined;
  };
  return (entry) => {
    // a volume label names no file
    if (entry.type === 'V') return { action: 'keep' };
    const parts = components(entry.rawName ?? entry.name);
    if (parts.includes('..')) refuse(entry, 'its path climbs out with ".."');
    const via = throughSymlink(parts);
    if (via !== undefined) refuse(entry, `it goes through the symlink "${via}"`);
    let isSymlink = entry.type === '2';
    if (entry.type === '1') {
      const raw = entry.rawLinkname ?? entry.linkname ?? '';
      const target = components(raw);
      if (target.includes('..')) refuse(entry, `a hardlink to "${entry.linkname}" climbs out with ".."`);
      const link = throughSymlink(target);
      if (link !== undefined) refuse(entry, `a hardlink through the symlink "${link}"`);
      isSymlink = symlinks.has(target.join('/'));
    }
    const key = parts.join('/');
    if (!key) return { action: 'keep' };
    if (isSymlink) symlinks.add(key);
    // GNU tar keeps a symlink to a directory when a directory entry of the same name comes, and a
    // file entry whose name ends in "/" is a directory entry to it
    else if (entry.type !== '5' && entry.type !== 'D' && !(entry.rawName ?? entry.name).endsWith('/'))
      symlinks.delete(key);
    return { action: 'keep' };
  };
}
