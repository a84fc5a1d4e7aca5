import { Readable } from 'node:stream';
import { BareonError } from '../core/errors.js';
import { NEWC_TRAILER, newcDataPadding, newcHeader } from './cpio.js';
import { lazyPackage } from '../core/lazy-package.js';

/** tar-stream loads with the first archive read or written. */
const tar = lazyPackage<typeof import('tar-stream')>('tar-stream');

const S_IFMT: Record<string, number> = {
  file: 0o100000,
  'contiguous-file': 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

/** An entry's fate on its way into the archive: kept, dropped, or given other contents. */
export type NewcDecision =
  | { action: 'keep' }
  | { action: 'drop' }
  | { action: 'replace'; content: Buffer; mode?: number };

export interface TarToNewcOptions {
  /** Decides each entry by its path (no leading "/" or "./", no trailing "/"). */
  decide?(name: string): NewcDecision;
  /**
   * Sees the data of the regular files it names as they pass, kept or dropped (a netboot exporter
   * takes the kernel out of the tree this way).
   */
  watch?(name: string): ((data: Buffer) => void) | undefined;
  /** Entries added at the end (symlinks such as `/init`, or small files), given every name written. */
  append?(names: ReadonlySet<string>): { name: string; symlink?: string; content?: Buffer; mode: number }[];
}

/** The buffers that hold bytes: Readable.from stalls on an empty chunk in byte mode. */
function* nonEmpty(...parts: Buffer[]): Generator<Buffer> {
  for (const part of parts) if (part.length) yield part;
}

const clean = (name: string) => name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');

/**
 * Turns a rootfs tar stream into a newc cpio stream, member by member, as the kernel unpacks an
 * initramfs: file data is never held, only each file's name and inode. Hardlinks keep their inode:
 * every regular file is written with nlink 2, because the kernel links a later member to an earlier
 * one only when that earlier one said it had links, and a tar stream tells of a link only after its
 * target. newc has no place for xattrs, so file capabilities do not survive.
 */
export function tarToNewc(source: Readable, opts: TarToNewcOptions = {}): Readable {
  const extract = tar().extract();
  source.on('error', (err) => extract.destroy(err));
  const inodes = new Map<string, { ino: number; mode: number }>();
  const seen = new Set<string>();
  let nextIno = 1;

  async function* members(): AsyncGenerator<Buffer> {
    // piped only once the archive is read: an entry that extract announces before the loop below
    // listens would be lost, and the stream would wait for it forever
    source.pipe(extract);
    for await (const entry of extract) {
      const h = entry.header;
      const name = clean(h.name);
      const decision = opts.decide?.(name) ?? { action: 'keep' };
      if (!name || decision.action === 'drop') {
        const watcher = name && (h.type ?? 'file') === 'file' ? opts.watch?.(name) : undefined;
        if (watcher) for await (const chunk of entry) watcher(chunk as Buffer);
        else entry.resume();
        continue;
      }
      seen.add(name);
      const base = { uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000) };
      const perm = (h.mode ?? 0o644) & 0o7777;
      if (decision.action === 'replace') {
        entry.resume();
        const ino = nextIno++;
        const mode = 0o100000 | (decision.mode ?? perm);
        inodes.set(name, { ino, mode });
        yield* nonEmpty(
          newcHeader(name, { ...base, ino, mode, nlink: 2, size: decision.content.length }),
          decision.content,
          newcDataPadding(decision.content.length),
        );
        continue;
      }
      if (h.type === 'link') {
        entry.resume();
        const target = inodes.get(clean(h.linkname ?? ''));
        if (!target)
          throw new BareonError(
            `tar to cpio: ${name} is a hardlink to ${h.linkname}, which the archive did not hold before it`,
          );
        yield newcHeader(name, { ...base, ino: target.ino, mode: target.mode, nlink: 2, size: 0 });
        continue;
      }
      const type = S_IFMT[h.type ?? 'file'];
      if (type === undefined) {
        entry.resume();
        continue;
      }
      const ino = nextIno++;
      const mode = type | perm;
      const rdev = { rdevMajor: h.devmajor ?? 0, rdevMinor: h.devminor ?? 0 };
      if (type === 0o120000) {
        entry.resume();
        const target = Buffer.from(h.linkname ?? '');
        yield* nonEmpty(
          newcHeader(name, { ...base, ino, mode, size: target.length }),
          target,
          newcDataPadding(target.length),
        );
        continue;
      }
      if (type !== 0o100000) {
        entry.resume();
        yield newcHeader(name, { ...base, ...rdev, ino, mode, size: 0 });
        continue;
      }
      inodes.set(name, { ino, mode });
      const size = h.size ?? 0;
      yield newcHeader(name, { ...base, ino, mode, nlink: 2, size });
      const watcher = opts.watch?.(name);
      for await (const chunk of entry) {
        watcher?.(chunk as Buffer);
        yield* nonEmpty(chunk as Buffer);
      }
      yield* nonEmpty(newcDataPadding(size));
    }
    for (const extra of opts.append?.(seen) ?? []) {
      const data = extra.symlink !== undefined ? Buffer.from(extra.symlink) : (extra.content ?? Buffer.alloc(0));
      const mode = (extra.symlink !== undefined ? 0o120000 : 0o100000) | extra.mode;
      yield* nonEmpty(
        newcHeader(extra.name, { ino: nextIno++, mode, size: data.length }),
        data,
        newcDataPadding(data.length),
      );
    }
    yield NEWC_TRAILER;
  }
  return Readable.from(members(), { objectMode: false });
}
