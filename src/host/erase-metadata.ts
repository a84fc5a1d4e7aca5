import { BareonError } from '../core/errors.js';
import { clearPartitionTables } from './disk-target.js';
import { listDisks } from './disk-inventory.js';
import { HostExecutor } from './executor.js';
import { findHolders } from './holders.js';
import { sysBlockDir, sysPartitions } from './sysfs.js';

/** What erasing did to one disk, or why it was left alone. */
export interface ErasedDisk {
  path: string;
  erased: boolean;
  why?: string;
}

/**
 * Ironic's clean step erase_devices_metadata, as bareon does it: on every writable whole disk of
 * this machine, the filesystem, RAID and LVM signatures of each partition and of the disk itself go
 * (wipefs), then the partition tables at both ends. The data stays where it was; what found it is
 * gone. A disk that something holds (the agent's own root, a mount, an array still assembled) is
 * an error naming the holder, unless `skipBusy`, which leaves it and says so.
 */
export async function eraseDevicesMetadata(opts: {
  signal?: AbortSignal;
  skipBusy?: boolean;
  log?: (text: string) => void;
}): Promise<ErasedDisk[]> {
  const ex = new HostExecutor(opts.signal);
  const done: ErasedDisk[] = [];
  for (const disk of await listDisks()) {
    if (disk.read_only) {
      done.push({ path: disk.path, erased: false, why: 'read-only' });
      continue;
    }
    const holders = await findHolders(disk.path, 'block');
    if (holders.length) {
      if (!opts.skipBusy)
        throw new BareonError(`erase_devices_metadata: ${disk.path} is in use: ${holders.join('; ')}`, {
          hint: 'stop what holds it (arrays, volume groups, mounts); nothing was erased on it',
        });
      done.push({ path: disk.path, erased: false, why: holders.join('; ') });
      opts.log?.(`erase_devices_metadata: ${disk.path} left alone: ${holders.join('; ')}`);
      continue;
    }
    const partitions = (await sysPartitions(await sysBlockDir(disk.path))).map((p) => `/dev/${p.name}`);
    for (const node of [...partitions, disk.path])
      await ex.run(['wipefs', '--all', '--force', node], { step: `erase_devices_metadata ${node}` });
    await clearPartitionTables(disk.path, disk.size);
    // the kernel forgets the partitions it knew, so nothing reads the old layout again
    await ex.run(['blockdev', '--rereadpt', disk.path], { allowFailure: true });
    done.push({ path: disk.path, erased: true });
    opts.log?.(`erase_devices_metadata: ${disk.path} (${partitions.length} partitions) erased`);
  }
  return done;
}
