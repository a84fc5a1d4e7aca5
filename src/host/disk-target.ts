import { open, realpath, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { CleanupStack } from '../core/cleanup.js';
import { BareonError, ValidationError } from '../core/errors.js';
import { SECTOR } from '../disk/geometry.js';
import type { DiskTarget } from '../objects/index.js';
import { formatBytes, MiB } from '../core/size.js';
import { HostExecutor } from './executor.js';
import { fileId, findHolders } from './holders.js';
import { attachLoop } from './loop.js';
import { tempDir } from './mount.js';
import { sysAttr, sysBlockDir, sysPartitions } from './sysfs.js';

/** What bareon knows of a deploy target before touching it. */
export interface TargetInfo {
  path: string;
  kind: 'block' | 'file';
  /** Bytes the disk will have (a file is created or extended to it). */
  size: number;
  /** Current size (0 for a file that does not exist yet). */
  currentSize: number;
  zeroFrom: number;
  model?: string;
  serial?: string;
  /** For loop devices: the file behind them. */
  backingFile?: string;
}

/**
 * Reads a block device's or image file's size and identity; `wantSize` sizes a new or short file.
 * `sizeFrom` names where that size came from, for the error when it does not fit.
 */
export async function inspectTarget(target: string, wantSize?: number, sizeFrom = '--size'): Promise<TargetInfo> {
  const st = await stat(target).catch(() => undefined);
  // /dev holds devices (but for /dev/shm, a tmpfs for files): a path there that is no block device is a typo, never a new image file
  const resolved = path.resolve(target);
  if (resolved.startsWith('/dev/') && !resolved.startsWith('/dev/shm/') && !st?.isBlockDevice()) {
    throw new ValidationError(`target ${target}: ${st ? 'not a block device' : 'no such device'}`, {
      hint: '`bareon disks` lists the disks of this machine',
    });
  }
  if (!st) {
    const dir = await stat(path.dirname(path.resolve(target))).catch(() => undefined);
    if (!dir?.isDirectory())
      throw new ValidationError(`target ${target}: neither a device nor a file, and its directory does not exist`);
    if (!wantSize)
      throw new ValidationError(`target ${target} does not exist and its size is unknown`, {
        hint: 'give --size 8GiB to create the image file',
      });
    return { path: path.resolve(target), kind: 'file', size: wantSize, currentSize: 0, zeroFrom: 0 };
  }
  if (st.isFile()) {
    const size = Math.max(st.size, wantSize ?? 0);
    // a file with no blocks allocated reads back zeros everywhere; otherwise only past its end
    const zeroFrom = st.blocks === 0 ? 0 : st.size;
    if (size === 0)
      throw new ValidationError(`target ${target} is an empty file`, { hint: 'give --size 8GiB to extend it' });
    return { path: path.resolve(target), kind: 'file', size, currentSize: st.size, zeroFrom };
  }
  if (!st.isBlockDevice())
    throw new ValidationError(`target ${target} is not a block device or a regular file`, {
      hint: 'give /dev/sdX, /dev/nvmeXnY or an image file path',
    });
  const dev = await realpath(target);
  const sys = await sysBlockDir(dev);
  if (await sysAttr(path.join(sys, 'partition')))
    throw new ValidationError(`target ${target} is a partition`, {
      hint: 'give the whole disk (for example /dev/sda, not /dev/sda1)',
    });
  const size = Number(await sysAttr(path.join(sys, 'size'))) * SECTOR;
  if (!size) throw new ValidationError(`target ${target} has no media (size 0)`);
  if ((await sysAttr(path.join(sys, 'ro'))) === '1')
    throw new ValidationError(`target ${target} is read-only`, {
      hint: 'make it writable (blockdev --setrw, a write-protect switch, losetup without --read-only) or choose another disk',
    });
  if (wantSize && wantSize > size)
    throw new ValidationError(
      `${sizeFrom} (${formatBytes(wantSize)}) is larger than ${target} (${formatBytes(size)})`,
      { hint: 'choose a larger disk' },
    );
  return {
    path: dev,
    kind: 'block',
    size,
    currentSize: size,
    zeroFrom: Infinity,
    model: await sysAttr(path.join(sys, 'device/model')),
    serial: (await sysAttr(path.join(sys, 'device/serial'))) ?? (await sysAttr(path.join(sys, 'serial'))),
    backingFile: await sysAttr(path.join(sys, 'loop/backing_file')),
  };
}

/**
 * Refuses a target that is the source itself: the same file (whatever path names it), or a loop
 * device over the source file. Writing it would destroy what is being read.
 */
export async function refuseSourceAsTarget(t: TargetInfo, sourceFile: string): Promise<void> {
  const source = await fileId(sourceFile);
  if (!source) return;
  const same =
    t.kind === 'file'
      ? (await fileId(t.path)) === source
      : t.backingFile !== undefined && (await fileId(t.backingFile)) === source;
  if (same) {
    throw new ValidationError(
      `target ${t.path} is the source ${sourceFile}${t.kind === 'block' ? ' (a loop device over it)' : ''}: writing it would destroy the image being read`,
      {
        hint: 'give another target; nothing was written',
      },
    );
  }
}

/** "/dev/sdb, 8.0 GiB, model QEMU HARDDISK, serial disk-a" */
export function describeTarget(t: TargetInfo): string {
  const parts = [t.path, formatBytes(t.size)];
  if (t.model) parts.push(`model ${t.model}`);
  if (t.serial) parts.push(`serial ${t.serial}`);
  if (t.backingFile) parts.push(`loop device over ${t.backingFile}`);
  if (t.kind === 'file')
    parts.push(t.currentSize ? `image file (${formatBytes(t.currentSize)} now)` : 'new image file');
  return parts.join(', ');
}

/** Refuses a target that anything holds, listing every holder. */
export async function refuseBusyTarget(t: TargetInfo): Promise<void> {
  const holders = await findHolders(t.path, t.kind);
  if (holders.length) {
    throw new ValidationError(`target ${t.path} is in use:\n  - ${holders.join('\n  - ')}`, {
      hint: 'unmount it, detach its loop devices, stop what holds it, or choose another disk; nothing was written',
    });
  }
}

/**
 * Zeros where partition tables live: the MBR and primary GPT (first MiB), the backup GPT at the
 * disk's end, and at `imageEnd` where a written image kept its own backup header.
 */
export async function clearPartitionTables(file: string, size: number, imageEnd?: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const zeros = Buffer.alloc(MiB);
    await fh.write(zeros, 0, Math.min(MiB, size), 0);
    for (const end of new Set([size, imageEnd ?? size]))
      if (end > MiB) await fh.write(zeros, 0, 64 * SECTOR, Math.max(MiB, end - 64 * SECTOR));
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * A deploy target on this host. Partitions are reached through their kernel node when one exists,
 * else through an offset loop device; the root tree (`tree`) is shared by all disks of the run.
 * Loop devices, mounts and temp dirs are released by the cleanup stack.
 */
export function hostDiskTarget(
  id: string,
  info: TargetInfo,
  opts: {
    cleanup: CleanupStack;
    signal: AbortSignal;
    preserveOnError: boolean;
    log: (line: string) => void;
    warn: (text: string) => void;
    tree: () => Promise<string>;
  },
): DiskTarget {
  const ex = new HostExecutor(opts.signal);
  const devices = new Map<number, string>();
  let prepared = false;
  let scratch: string | undefined;

  const target: DiskTarget = {
    id,
    path: info.path,
    size: info.size,
    executor: ex,
    kind: info.kind,
    zeroFrom: info.zeroFrom,
    async prepare() {
      if (prepared) return;
      prepared = true;
      if (info.kind === 'file' && info.currentSize < info.size) await sizeFile(info);
      // whatever writes first makes the disk unbootable until the run completes
      opts.cleanup.deferOnFailure(async () => {
        if (opts.preserveOnError)
          return opts.log(`the run failed; ${info.path} is kept as it is (--preserve-on-error)`);
        // a tool stopped mid-write (sgdisk writing the table) must be gone, or it could write after this
        await ex.settled();
        await clearPartitionTables(info.path, info.size, target.imageEnd);
        opts.warn(
          `the run failed after writing started: cleared the partition tables of ${info.path} (MBR and both GPT headers) so the half-written disk cannot boot; --preserve-on-error keeps them`,
        );
      }, `clear the partition tables of ${info.path}`);
      opts.cleanup.defer(() => flush(info), `flush ${info.path}`);
    },
    async partition(number) {
      const placed = target.geometry?.partitions.find((p) => p.number === number);
      if (!placed) throw new BareonError(`${info.path}: partition ${number} is not in the layout's table`);
      let dev = devices.get(number) ?? (await kernelPartitionNode(info, number));
      if (!dev) {
        dev = await attachLoop(ex, opts.cleanup, info.path, placed.start, placed.size);
        devices.set(number, dev);
      }
      return { path: dev, offset: 0, size: placed.size, device: true };
    },
    rootDir() {
      return opts.tree();
    },
    async scratchDir() {
      scratch ??= await tempDir(opts.cleanup, 'scratch');
      return scratch;
    },
  };
  return target;
}

/** Creates or extends an image file target to its size; a file this made is removed again when that fails. */
async function sizeFile(info: TargetInfo): Promise<void> {
  const created = info.currentSize === 0 && !(await stat(info.path).catch(() => undefined));
  try {
    if (created) await (await open(info.path, 'wx')).close();
    await truncate(info.path, info.size);
  } catch (err) {
    if (created) await unlink(info.path).catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    throw new BareonError(
      `target ${info.path}: cannot ${created ? 'create' : 'extend'} it to ${formatBytes(info.size)} (${code === 'EFBIG' ? 'larger than its filesystem allows' : (code ?? (err as Error).message)})`,
      {
        hint: created
          ? 'give a smaller --size, or a target on another filesystem; nothing was written'
          : 'give a smaller --size',
        cause: err,
      },
    );
  }
}

/** /dev/sda2 when the kernel has a node for partition 2 of the disk and it matches the table. */
async function kernelPartitionNode(info: TargetInfo, number: number): Promise<string | undefined> {
  if (info.kind !== 'block') return undefined;
  const parts = await sysPartitions(await sysBlockDir(info.path));
  const part = parts.find((p) => p.number === number);
  if (!part) return undefined;
  const node = `/dev/${part.name}`;
  return (await stat(node).catch(() => undefined))?.isBlockDevice() ? node : undefined;
}

/** Writes the page cache of an image file or block device out to the disk. */
async function flush(info: TargetInfo): Promise<void> {
  const fh = await open(info.path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
