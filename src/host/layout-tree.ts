import type { CleanupStack } from '../core/cleanup.js';
import { BareonError } from '../core/errors.js';
import type { Objects } from '../objects/index.js';
import { layoutVolumes, volumeDevicePath, type Volume } from '../objects/volumes.js';
import { HostExecutor } from './executor.js';
import { resolveInRoot } from './in-root.js';
import { mountDevice, tempDir } from './mount.js';

/** The device node of a volume on this host: a partition's node (or offset loop device), /dev/md/ID, /dev/mapper/VG-LV. */
export async function volumeDevice(objects: Objects, v: Volume): Promise<string> {
  if (v.kind !== 'partition') return volumeDevicePath(v)!;
  const disk = objects.layout!.disks[v.disk];
  const target = objects.disks?.find((t) => t.id === disk.id);
  const placed = target?.geometry?.partitions.find((p) => p.index === v.index);
  if (!target || !placed) throw new BareonError(`disk "${disk.id}" is not partitioned; run partitioning first`);
  return (await target.partition(placed.number)).path;
}

/** The partition of type raid or lvm with this id. */
export function partitionById(objects: Objects, id: string): Volume | undefined {
  return layoutVolumes(objects.layout!).find((v) => v.kind === 'partition' && v.partition.id === id);
}

/** Size in bytes of a block device. */
export async function blockDeviceSize(ex: HostExecutor, dev: string): Promise<number> {
  return Number((await ex.run(['blockdev', '--getsize64', dev], { step: `size of ${dev}` })).stdout.trim());
}

/** The layout's root tree, mounted on the first call and shared by every later one (all disks of a run). */
export function layoutTreeOnce(objects: Objects, cleanup: CleanupStack, signal?: AbortSignal): () => Promise<string> {
  let tree: Promise<string> | undefined;
  return () => {
    tree ??= mountLayoutTree(objects, cleanup, signal);
    return tree;
  };
}

/**
 * Mounts the root tree of a deploy: every mountable filesystem of the layout (partitions of all its
 * disks, md arrays, logical volumes), shallowest first under one temp dir. Kept partitions stay
 * unmounted; vfat is written with mtools, so it is not mounted either. The deploy driver mounts it
 * once per run, when an action first asks a target for its root.
 */
export async function mountLayoutTree(objects: Objects, cleanup: CleanupStack, signal?: AbortSignal): Promise<string> {
  const depth = (m: string) => (m === '/' ? 0 : m.split('/').length);
  const mounts = layoutVolumes(objects.layout!)
    .filter((v) => v.mount && v.fs && !v.keep && !['vfat', 'swap'].includes(v.fs.type))
    .sort((a, b) => depth(a.mount!) - depth(b.mount!));
  if (mounts[0]?.mount !== '/')
    throw new BareonError(`${objects.target ?? 'the target'}: no filesystem of the layout is mounted at /`);
  const ex = new HostExecutor(signal);
  const dir = await tempDir(cleanup, 'root', { mountPoint: true });
  for (const v of mounts) {
    // inside the filesystems mounted so far: a mount point that is a symlink in the image stays in it
    const where = await resolveInRoot(dir, v.mount!, { mkdir: 'all' });
    await mountDevice(ex, cleanup, await volumeDevice(objects, v), where, v.fs!.type);
  }
  return dir;
}
