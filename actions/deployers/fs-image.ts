import { pipeline } from 'node:stream/promises';
import { BareonError, ValidationError, definePlugin, formatBytes } from 'bareon/plugin';
import {
  checkSourceDigest,
  deployTarget,
  requireSource,
  decompressor,
  ext4Uuid,
  HashMeter,
  progressMeter,
  DiskWriter,
} from 'bareon/stream';
import { rootPartition, requireLayout } from 'bareon/disk';

/** Writes an ext2/3/4 filesystem image (the ext4 exporter's output) onto the root partition and grows it to fill it. */
export default definePlugin({
  reads: ['source', 'layout', 'layoutFile', 'disks', 'deploy'],
  summary: 'writes an ext4 filesystem image (optionally gz/xz/zst) onto the root partition and grows it',
  validate(objects) {
    const source = requireSource(objects, 'fs-image');
    if (source.content !== 'fs')
      throw new ValidationError(`fs-image deploys filesystem images; ${source.uri} is ${source.format}`);
    deployTarget(objects, 'fs-image');
    const root = rootPartition(requireLayout(objects, 'fs-image'), objects.layoutFile);
    if (!root.partition.fs?.type.startsWith('ext'))
      throw new ValidationError(
        `${objects.layoutFile ?? 'layout'}: ${root.path}.fs.type: an ext4 image needs an ext2/3/4 root, not ${root.partition.fs?.type}`,
      );
    const size = source.virtualSize ?? 0;
    if (!source.compression && source.size !== undefined && source.size < size) {
      throw new ValidationError(
        `source ${source.uri}: its superblock says the filesystem is ${formatBytes(size)}, but the file holds ${formatBytes(source.size)}`,
        { hint: 'the image is truncated; copy it again' },
      );
    }
    if (root.partition.fs.uuid !== ext4Uuid(source.head))
      throw new ValidationError(
        `${objects.layoutFile ?? 'layout'}: ${root.path}.fs.uuid is ${root.partition.fs.uuid} but the image's filesystem is ${ext4Uuid(source.head)}`,
        { hint: 'drop the uuid from the layout' },
      );
  },
  describe(objects) {
    return [
      `write ${objects.source!.format} ${objects.source!.uri} (${formatBytes(objects.source!.virtualSize ?? 0)}) onto the root partition, then resize2fs`,
    ];
  },
  async run(ctx) {
    const source = requireSource(ctx.objects, 'fs-image');
    const target = deployTarget(ctx.objects, 'fs-image');
    await target.prepare();
    const root = rootPartition(ctx.objects.layout!);
    const placed = target.geometry!.partitions.find((p) => p.index === root.index && p.spec === root.partition)!;
    const ref = await target.partition(placed.number);
    if ((source.virtualSize ?? 0) > ref.size)
      throw new ValidationError(
        `the filesystem image (${formatBytes(source.virtualSize!)}) is larger than the root partition (${formatBytes(ref.size)})`,
      );
    const meter = new HashMeter();
    const writer = new DiskWriter(ref.path, { flags: 'r+', offset: ref.offset, limit: ref.offset + ref.size });
    ctx.progress.start(source.virtualSize);
    await pipeline(
      [
        await source.open(ctx.signal),
        meter,
        ...(source.compression ? [decompressor(source.compression, ctx.signal, source.uri)] : []),
        progressMeter(ctx.progress),
        writer,
      ] as never,
      { signal: ctx.signal },
    );
    checkSourceDigest(source, ctx.objects.deploy!.verify, meter);
    if (writer.length < (source.virtualSize ?? 0)) {
      throw new BareonError(
        `source ${source.uri}: the stream ended after ${formatBytes(writer.length)} of the ${formatBytes(source.virtualSize!)} filesystem its superblock describes`,
        { hint: 'the image is truncated; copy it again' },
      );
    }
    const step = { step: 'grow the root filesystem', onLine: ctx.log };
    await target.executor.run(['e2fsck', '-f', '-p', ref.path], step);
    await target.executor.run(['resize2fs', ref.path], step);
    ctx.setTitle(
      `wrote ${source.format} onto partition ${placed.number} of ${target.path}, grown to ${formatBytes(ref.size)}`,
    );
  },
});
