import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ValidationError } from '../core/errors.js';
import { lazyPackage } from '../core/lazy-package.js';

/** tar-stream loads with the first archive read or written. */
const tar = lazyPackage<typeof import('tar-stream')>('tar-stream');

/** One entry to copy into a container, with a path relative to the container's root. */
export interface ArchiveEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  /** Inline content, or a local file to stream. */
  content?: Buffer;
  source?: string;
  size?: number;
  linkname?: string;
}

/** Walks a local file or directory into entries rooted at `dest`. */
export async function entriesFromLocal(source: string, dest: string, label: string): Promise<ArchiveEntry[]> {
  const st = await lstat(source).catch(() => undefined);
  if (!st)
    throw new ValidationError(`${label}: ${source} does not exist`, {
      hint: 'paths in files[].source are relative to the profile',
    });
  const rel = dest.replace(/^\/+/, '');
  if (st.isSymbolicLink()) return [{ path: rel, type: 'symlink', mode: 0o777, linkname: await readlink(source) }];
  if (st.isFile()) return [{ path: rel, type: 'file', mode: st.mode & 0o7777, source, size: st.size }];
  if (!st.isDirectory()) throw new ValidationError(`${label}: ${source} is neither a file, a directory nor a symlink`);
  const entries: ArchiveEntry[] = [{ path: rel, type: 'directory', mode: st.mode & 0o7777 }];
  for (const name of (await readdir(source)).sort())
    entries.push(...(await entriesFromLocal(path.join(source, name), rel ? `${rel}/${name}` : name, label)));
  return entries;
}

/** A digest of the entries' paths, types, modes and contents: what a cache key needs to know. */
export async function digestEntries(entries: ArchiveEntry[]): Promise<string> {
  const h = createHash('sha256');
  for (const e of entries) {
    h.update(`${e.path}\0${e.type}\0${e.mode.toString(8)}\0${e.linkname ?? ''}\0`);
    if (e.content) h.update(e.content);
    else if (e.source && e.type === 'file')
      await pipeline(createReadStream(e.source), async function* (chunks) {
        for await (const c of chunks) h.update(c as Buffer);
      });
    h.update('\0');
  }
  return h.digest('hex');
}

/** A tar stream of the entries, owned by root; file contents are streamed from disk. */
export function packEntries(entries: ArchiveEntry[]): Readable {
  const pack = tar().pack();
  (async () => {
    for (const e of entries) {
      const header = { name: e.path, mode: e.mode, uid: 0, gid: 0, mtime: new Date(0) };
      if (e.type === 'directory') pack.entry({ ...header, type: 'directory' });
      else if (e.type === 'symlink') pack.entry({ ...header, type: 'symlink', linkname: e.linkname });
      else if (e.content) pack.entry({ ...header, size: e.content.length }, e.content);
      else {
        const sink = pack.entry({ ...header, size: e.size });
        await pipeline(createReadStream(e.source!), sink);
      }
    }
    pack.finalize();
  })().catch((err) => pack.destroy(err));
  return pack as unknown as Readable;
}
