import { BareonError } from '../core/errors.js';
import type { TarEntryInfo } from './tar-filter.js';

/** A tar entry would land outside the target root. */
export class UnsafeTarEntryError extends BareonError {}

/**
 * Returns a `decide` for TarFilter that refuses every entry that could write outside the root it
 * is extracted into: ".." in a name or hardlink target, and any entry reached through a symlink
 * the archive made earlier (link → /etc, then link/passwd). Symlinks themselves may point anywhere:
 * absolute links are normal in a root filesystem and resolve inside it once booted.
 */
export function extractGuard(): (entry: TarEntryInfo) => { action: 'keep' } {
  const symlinks = new Set<string>();
  const refuse = (entry: TarEntryInfo, why: string) => {
    throw new UnsafeTarEntryError(`unsafe tar entry "${entry.name}": ${why}; nothing outside the target was written`, { hint: 'the archive is not a root filesystem bareon will extract; rebuild it' });
  };
  return (entry) => {
    const name = entry.name.replace(/\/$/, '');
    const parts = name.split('/');
    if (parts.includes('..')) refuse(entry, 'its path climbs out with ".."');
    if (entry.type === '1' && entry.linkname !== undefined) {
      const target = entry.linkname.replace(/^(\.\/|\/)+/, '');
      if (target.split('/').includes('..')) refuse(entry, `a hardlink to "${entry.linkname}" climbs out with ".."`);
      for (let i = 1; i <= target.split('/').length; i++) if (symlinks.has(target.split('/').slice(0, i).join('/'))) refuse(entry, `a hardlink through the symlink ${target.split('/').slice(0, i).join('/')}`);
    }
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (symlinks.has(prefix)) refuse(entry, `it goes through the symlink "${prefix}"`);
    }
    if (entry.type === '2') symlinks.add(name);
    else symlinks.delete(name);
    return { action: 'keep' };
  };
}
