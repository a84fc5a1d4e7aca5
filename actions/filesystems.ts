import { onLayout } from './placement.js';
import {
  BareonError,
  definePlugin,
  shq,
  type DiskExecutor,
  type DiskTarget,
  type PartitionRef,
  type Filesystem,
  MiB,
  layoutVolumes,
  volumeDevicePath,
} from 'bareon/plugin';
import {
  disksWithTargets,
  requireLayout,
  clampExt4Ctimes,
  clampTreeTimesCommands,
  makeUuid,
  HostExecutor,
  blockDeviceSize,
  volumeDevice,
} from 'bareon/disk';

const KiB = (bytes: number) => `${Math.floor(bytes / 1024)}`;

/**
 * Commands that make `fs` on a partition, filled from `dir` when given. On a partition device they
 * run on the device itself. Inside a disk image file, ext* and vfat are written in place at the
 * partition's offset; swap, btrfs and xfs are made as a file and copied in (their tools have no
 * offset option). With `epoch` (SOURCE_DATE_EPOCH), ext* and vfat come out the same for the same tree:
 * the tree's newer times are clamped, mke2fs takes the epoch for its own times and a hash seed
 * derived from the filesystem UUID, and mtools stamps the epoch.
 */
export function mkfsCommands(
  fs: Filesystem,
  part: PartitionRef,
  dir: string | undefined,
  scratch: string,
  epoch?: number,
): string[][] {
  const off = part.offset;
  const disk = part.path;
  const label = fs.label ? [fs.label] : [];
  const viaFile = (mk: string[]): string[][] =>
    part.device
      ? [mk.map((a) => (a === scratch ? disk : a))]
      : [
          ['rm', '-f', scratch],
          ['truncate', '-s', String(part.size), scratch],
          mk,
          ['dd', `if=${scratch}`, `of=${disk}`, 'bs=1M', `seek=${off / MiB}`, 'conv=notrunc,sparse', 'status=none'],
          ['rm', '-f', scratch],
        ];
  switch (fs.type) {
    case 'ext2':
    case 'ext3':
    case 'ext4': {
      const extended = [
        ...(part.device ? [] : [`offset=${off}`]),
        ...(epoch === undefined ? [] : [`hash_seed=${makeUuid(fs.uuid, 'hash_seed')}`]),
      ];
      const mk = [
        'mkfs.ext4',
        '-F',
        '-q',
        '-t',
        fs.type,
        ...(fs.label ? ['-L', fs.label] : []),
        '-U',
        fs.uuid!,
        ...(dir ? ['-d', dir] : []),
        ...(extended.length ? ['-E', extended.join(',')] : []),
        ...fs.mkfs_options,
        disk,
        `${KiB(part.size)}k`,
      ];
      if (epoch === undefined) return [mk];
      return [...(dir ? clampTreeTimesCommands(dir, epoch) : []), ['env', `E2FSPROGS_FAKE_TIME=${epoch}`, ...mk]];
    }
    case 'vfat': {
      const fat = part.size < 64 * MiB ? ['-F', '16'] : ['-F', '32', '-s', '1'];
      const img = `${disk}@@${off}`;
      const sde = epoch === undefined ? '' : `SOURCE_DATE_EPOCH=${epoch} `;
      const mk = [
        'mkfs.vfat',
        ...fat,
        ...(fs.label ? ['-n', fs.label] : []),
        '-i',
        fs.uuid!.replace('-', ''),
        // -I: at an offset inside a partitioned block device, which mkfs.vfat otherwise refuses
        ...(part.device ? [] : ['-I', `--offset=${off / 512}`]),
        ...fs.mkfs_options,
        disk,
        KiB(part.size),
      ];
      // mkfs.vfat 4.2 stamps the label entry with the clock; mtools writes it again with the epoch
      const relabel =
        epoch !== undefined && fs.label
          ? [['env', `SOURCE_DATE_EPOCH=${epoch}`, 'MTOOLS_SKIP_CHECK=1', 'mlabel', '-i', img, `::${fs.label}`]]
          : [];
      const copy = dir
        ? [
            [
              'sh',
              '-c',
              `cd ${shq(dir)} && if [ -n "$(ls -A)" ]; then ${sde}MTOOLS_SKIP_CHECK=1 mcopy -s -p -Q -i ${shq(img)} ./* ::/; fi`,
            ],
          ]
        : [];
      return [mk, ...relabel, ...copy];
    }
    case 'swap':
      return viaFile(['mkswap', ...(fs.label ? ['-L', fs.label] : []), '-U', fs.uuid!, scratch]);
    case 'btrfs':
      return viaFile([
        'mkfs.btrfs',
        '-q',
        '-f',
        ...label.flatMap((l) => ['-L', l]),
        '-U',
        fs.uuid!,
        ...(dir ? ['--rootdir', dir] : []),
        ...fs.mkfs_options,
        scratch,
      ]);
    case 'xfs':
      return viaFile([
        'mkfs.xfs',
        '-q',
        '-f',
        ...label.flatMap((l) => ['-L', l]),
        '-m',
        `uuid=${fs.uuid}`,
        ...fs.mkfs_options,
        scratch,
      ]);
  }
}

async function isEmptyDir(ex: DiskExecutor, dir: string): Promise<boolean> {
  const r = await ex.run(['sh', '-c', `[ ! -d ${shq(dir)} ] || [ -z "$(ls -A ${shq(dir)})" ]`], { allowFailure: true });
  return r.exitCode === 0;
}

/**
 * Moves the content under each non-root mount point of the staged tree into its own directory, deepest
 * first, so that each filesystem is made from exactly its subtree. Returns the directory per partition.
 */
async function splitStagedTree(
  target: DiskTarget,
  mounts: { index: number; mount: string }[],
): Promise<Map<number, string>> {
  const root = target.stagedRoot!;
  const dirs = new Map<number, string>();
  const nested = mounts
    .filter((m) => m.mount !== '/')
    .sort((a, b) => b.mount.split('/').length - a.mount.split('/').length);
  for (const { index, mount } of nested) {
    const dir = `/tmp/bareon-mounts/${index}`;
    await target.executor.run(
      [
        'sh',
        '-c',
        `mkdir -p ${shq(dir)} ${shq(root + mount)} && cd ${shq(root + mount)} && find . -mindepth 1 -maxdepth 1 -exec mv -t ${shq(dir)} {} +`,
      ],
      {
        step: `filesystems: split ${mount}`,
      },
    );
    dirs.set(index, dir);
  }
  for (const m of mounts) if (m.mount === '/') dirs.set(m.index, root);
  return dirs;
}

/** Makes every filesystem of the layout; for image builds, each is filled from its part of the root tree. */
export default definePlugin({
  reads: ['layout', 'disks', 'epoch'],
  summary:
    'makes the filesystems of the layout (ext2/3/4, xfs, btrfs, vfat, swap), filled from the root tree for images',
  pipelines: {
    deploy: { after: ['partitioning', 'raid', 'lvm'], applies: onLayout },
    // images make filesystems from the staged tree, so the files (fstab, GRUB's) must be there first
    image: { after: ['partitioning', 'fstab', 'bootloader'] },
  },
  validate(objects) {
    requireLayout(objects, 'filesystems');
  },
  describe(objects) {
    return [
      ...(objects.layout?.disks ?? []).flatMap((d) =>
        d.partitions.flatMap((p, i) =>
          p.fs
            ? [
                `${d.id} partition ${i + 1}: ${p.keep ? `kept (${p.fs.type} ${p.fs.uuid}, not made again)` : `mkfs.${p.fs.type}${p.fs.label ? ` -L ${p.fs.label}` : ''} uuid ${p.fs.uuid}`}`,
              ]
            : [],
        ),
      ),
      ...(objects.layout ? layoutVolumes(objects.layout) : []).flatMap((v) =>
        v.kind !== 'partition' && v.fs
          ? [`${volumeDevicePath(v)}: mkfs.${v.fs.type}${v.fs.label ? ` -L ${v.fs.label}` : ''} uuid ${v.fs.uuid}`]
          : [],
      ),
    ];
  },
  async run(ctx) {
    for (const { disk, target } of disksWithTargets(ctx.objects, 'filesystems')) {
      if (!target.geometry)
        throw new BareonError(`filesystems: disk "${disk.id}" is not partitioned; run partitioning first`);
      // kept partitions keep their filesystems and data
      const withFs = target.geometry.partitions.filter((p) => p.spec.fs && !p.spec.keep);
      const dirs = target.stagedRoot
        ? await splitStagedTree(
            target,
            withFs.filter((p) => p.spec.mount).map((p) => ({ index: p.index, mount: p.spec.mount! })),
          )
        : new Map<number, string>();
      // the root last: the other trees have been moved out of it
      withFs.sort((a, b) => Number(a.spec.mount === '/') - Number(b.spec.mount === '/'));
      const scratch = await target.scratchDir();
      for (const part of withFs) {
        const fs = part.spec.fs!;
        const dir = dirs.get(part.index);
        if (fs.type === 'xfs' && dir && !(await isEmptyDir(target.executor, dir))) {
          throw new BareonError(
            `filesystems: ${part.spec.mount} is xfs and has content; xfsprogs here cannot fill xfs without mounting`,
            { hint: 'use ext4 or btrfs for this mount in images' },
          );
        }
        ctx.log(`mkfs.${fs.type} on partition ${part.number}${part.spec.mount ? ` (${part.spec.mount})` : ''}`);
        const ref = await target.partition(part.number);
        const epoch = target.stagedRoot ? ctx.objects.epoch : undefined;
        for (const cmd of mkfsCommands(
          fs,
          ref,
          fs.type === 'xfs' ? undefined : dir,
          `${scratch}/bareon-fs-${part.number}.img`,
          epoch,
        )) {
          await target.executor.run(cmd, {
            step: `filesystems: ${fs.type} on ${disk.id} partition ${part.number}`,
            onLine: ctx.log,
          });
        }
        if (epoch !== undefined && /^ext[234]$/.test(fs.type) && dir) {
          const n = await clampExt4Ctimes(
            target.executor,
            ref.device ? ref.path : `${ref.path}?offset=${ref.offset}`,
            epoch,
          );
          ctx.log(`partition ${part.number}: ${n} inode change times set to SOURCE_DATE_EPOCH`);
        }
      }
      ctx.setTitle(
        `filesystems on ${disk.id}: ${withFs.map((p) => `${p.spec.fs!.type}${p.spec.mount ? ` ${p.spec.mount}` : ''}`).join(', ')}`,
      );
    }
    // md arrays and logical volumes exist by now (raid and lvm ran after partitioning)
    const stacked = layoutVolumes(ctx.objects.layout!).filter((v) => v.kind !== 'partition' && v.fs);
    const ex = new HostExecutor(ctx.signal);
    for (const v of stacked) {
      const dev = await volumeDevice(ctx.objects, v);
      const ref = { path: dev, offset: 0, size: await blockDeviceSize(ex, dev), device: true };
      ctx.log(`mkfs.${v.fs!.type} on ${dev}${v.mount ? ` (${v.mount})` : ''}`);
      for (const cmd of mkfsCommands(v.fs!, ref, undefined, dev))
        await ex.run(cmd, { step: `filesystems: ${v.fs!.type} on ${dev}`, onLine: ctx.log });
    }
  },
});
