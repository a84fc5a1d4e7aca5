import type { CleanupStack } from '../core/cleanup.js';
import { BareonError } from '../core/errors.js';
import type { HostExecutor } from '../host/executor.js';
import { attachLoop } from '../host/loop.js';
import { mountDevice, tempDir } from '../host/mount.js';
import { stat } from 'node:fs/promises';
import { formatBytes, MiB } from '../core/size.js';
import { readPartitionTable } from '../disk/partition-table.js';

/** What --grow did. */
export interface GrowResult {
  partition: number;
  from: number;
  to: number;
  fs?: string;
}

/** The filesystem type on a device, as blkid sees it. */
async function fsType(ex: HostExecutor, dev: string): Promise<string | undefined> {
  const r = await ex.run(['blkid', '-o', 'value', '-s', 'TYPE', dev], { allowFailure: true });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/**
 * Makes the last partition of `disk` end at the end of the disk (sfdisk keeps its type, uuid, name
 * and attributes), then grows its filesystem: ext2/3/4 with resize2fs, xfs and btrfs while mounted.
 */
export async function growLastPartition(
  ex: HostExecutor,
  cleanup: CleanupStack,
  disk: string,
  log: (line: string) => void,
  reserve = 0,
): Promise<GrowResult> {
  const before = await readPartitionTable(ex, disk);
  const last = before?.partitions.sort((a, b) => b.start - a.start)[0];
  if (!before || !last) throw new BareonError(`--grow: ${disk} has no partition to grow`);
  // with `reserve`, stop 1 MiB-aligned that far before the end (and before a GPT's backup)
  const st = await stat(disk);
  const diskSize = st.isBlockDevice()
    ? Number((await ex.run(['blockdev', '--getsize64', disk])).stdout.trim())
    : st.size;
  const bytes = reserve ? Math.floor((diskSize - 33 * 512 - reserve) / MiB) * MiB - last.start : undefined;
  if (bytes !== undefined && bytes < last.size)
    throw new BareonError(
      `--grow: no room to grow partition ${last.number} and keep ${formatBytes(reserve)} at the end of ${disk}`,
    );
  await ex.run(['sfdisk', '--no-reread', '--no-tell-kernel', '-N', String(last.number), disk], {
    step: `--grow: partition ${last.number}`,
    input: `, ${bytes === undefined ? '+' : bytes / 512}\n`,
    onLine: log,
  });
  const after = (await readPartitionTable(ex, disk))!.partitions.find((p) => p.number === last.number)!;
  const dev = await attachLoop(ex, cleanup, disk, after.start, after.size);
  const type = await fsType(ex, dev);
  const step = { step: `--grow: ${type} on partition ${last.number}`, onLine: log };
  if (type?.startsWith('ext')) {
    await ex.run(['e2fsck', '-f', '-p', dev], step);
    await ex.run(['resize2fs', dev], step);
  } else if (type === 'xfs' || type === 'btrfs') {
    const dir = await tempDir(cleanup, 'grow', { mountPoint: true });
    await mountDevice(ex, cleanup, dev, dir, type);
    await ex.run(type === 'xfs' ? ['xfs_growfs', dir] : ['btrfs', 'filesystem', 'resize', 'max', dir], step);
  } else if (type)
    log(`--grow: partition ${last.number} grew to ${formatBytes(after.size)}; its ${type} filesystem is left as it is`);
  return { partition: last.number, from: last.size, to: after.size, fs: type };
}
