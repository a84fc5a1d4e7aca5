import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { BareonError } from '../core/errors.js';

/** A path inside a deployed root filesystem that bareon will not write or read through. */
export class RootPathError extends BareonError {}

/** Symlinks followed in one resolution before it fails, as the kernel's ELOOP limit. */
const MAX_LINKS = 40;

export interface InRootOptions {
  /** Follow a symlink in the last component too (default true); false resolves the link itself. */
  follow?: boolean;
  /** Create the missing directories of the path (all of it, or all but its last component). */
  mkdir?: 'all' | 'parents';
}

const describe = (root: string, rel: string) => `/${rel.replace(/^\/+/, '')} in the deployed root ${root}`;

/**
 * Resolves `rel` beneath `root` as the deployed system will see it once booted, the way openat2's
 * RESOLVE_IN_ROOT does: an absolute symlink restarts at `root`, ".." stops at `root`, so the result
 * always lies inside `root` and holds no symlink. Components that do not exist are appended as they
 * are (or created as directories with `mkdir`). bareon is the only writer of the tree while it
 * resolves (the archive was extracted before), so there is no race with the tree's own content.
 */
export async function resolveInRoot(root: string, rel: string, opts: InRootOptions = {}): Promise<string> {
  const follow = opts.follow ?? true;
  const pending = rel.split('/').filter((c) => c && c !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length) {
    const name = pending.shift()!;
    if (name === '..') {
      resolved.pop();
      continue;
    }
    const here = path.join(root, ...resolved, name);
    const last = pending.length === 0;
    const st = await lstat(here).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!st) {
      resolved.push(name);
      if (opts.mkdir === 'all' || (opts.mkdir === 'parents' && !last)) await mkdir(here);
      continue;
    }
    if (st.isSymbolicLink() && (follow || !last)) {
      if (++links > MAX_LINKS)
        throw new RootPathError(`${describe(root, rel)}: more than ${MAX_LINKS} symlinks to follow`, {
          hint: 'the root filesystem holds a symlink loop',
        });
      const target = await readlink(here);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...target.split('/').filter((c) => c && c !== '.'));
      continue;
    }
    if (!last && !st.isDirectory())
      throw new RootPathError(`${describe(root, rel)}: /${[...resolved, name].join('/')} is not a directory`);
    resolved.push(name);
  }
  return path.join(root, ...resolved);
}

/** Opens a resolved path for writing without following a symlink or touching anything but a regular file. */
async function openRegular(root: string, rel: string, flags: number, mode: number) {
  const file = await resolveInRoot(root, rel, { mkdir: 'parents' });
  // checked before opening too: opening a device can act on it (a watchdog, a tape)
  const before = await lstat(file).catch(() => undefined);
  if (before && !before.isFile()) throw notRegular(root, rel, before);
  const fh = await open(file, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode).catch(
    (err: NodeJS.ErrnoException) => {
      throw new RootPathError(`${describe(root, rel)}: cannot open ${file} (${err.code ?? err.message})`, {
        cause: err,
      });
    },
  );
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw notRegular(root, rel, st);
  }
  return fh;
}

const notRegular = (root: string, rel: string, st: Parameters<typeof kind>[0]) =>
  new RootPathError(
    `${describe(root, rel)} is ${kind(st)}, not a regular file; bareon reads and writes only regular files there`,
    {
      hint: 'the image puts something other than a file where the deploy works; fix the image',
    },
  );

function kind(st: {
  isDirectory(): boolean;
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Writes a regular file at `rel` inside `root` (replacing its content), its directories created inside `root`. */
export async function writeFileInRoot(root: string, rel: string, data: Buffer, mode = 0o644): Promise<void> {
  const fh = await openRegular(root, rel, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

/** Appends to the existing regular file at `rel` inside `root`. */
export async function appendFileInRoot(root: string, rel: string, data: Buffer): Promise<void> {
  const fh = await openRegular(root, rel, constants.O_WRONLY | constants.O_APPEND, 0o644);
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

/** Reads the regular file at `rel` inside `root`. */
export async function readFileInRoot(root: string, rel: string): Promise<Buffer> {
  const fh = await openRegular(root, rel, constants.O_RDONLY, 0);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** The names in the directory at `rel` inside `root` ([] when there is none). */
export async function readdirInRoot(root: string, rel: string): Promise<string[]> {
  return readdir(await resolveInRoot(root, rel)).catch(() => []);
}

/**
 * Refuses a directory that holds anything but directories and regular files (symlinks, device
 * nodes, FIFOs): host tools such as mcopy and grub-mkimage read through them, so a hostile image
 * could make them copy this machine's files or disks. `what` names the directory in the error.
 */
export async function assertPlainTree(dir: string, what: string): Promise<void> {
  const odd: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (!entry.isFile())
        odd.push(`${path.relative(dir, full)} (${entry.isSymbolicLink() ? 'a symlink' : kind(entry)})`);
      if (odd.length >= 5) return;
    }
  };
  if ((await lstat(dir).catch(() => undefined))?.isDirectory()) await walk(dir);
  if (odd.length) {
    throw new RootPathError(`${what} holds entries that are not files or directories: ${odd.join(', ')}`, {
      hint: 'bareon copies only plain files from there; fix the image (a vfat ESP or GRUB module dir has no links or devices)',
    });
  }
}
