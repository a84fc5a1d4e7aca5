import { execa } from 'execa';
import { pipeline } from 'node:stream/promises';
import { BareonError, ValidationError, definePlugin, shq, layoutVolumes, formatBytes, rootTree } from 'bareon/plugin';
import {
  checkSourceDigest,
  expectedDigest,
  deployTarget,
  requireSource,
  extractGuard,
  TarFilter,
  decompressor,
  HashMeter,
  progressMeter,
  TAR_EXTRACT_ARGS,
} from 'bareon/stream';
import { artifactPartitions, rootVolume, disksWithTargets, requireLayout } from 'bareon/disk';

/**
 * Extracts a rootfs tarball onto the layout's filesystems, mounted under a temp dir: owners, modes,
 * hardlinks, device nodes and xattrs kept (GNU tar, numeric ids), entries that would escape refused.
 * Files under a vfat mount point (the ESP) are moved onto it with mtools.
 */
export default definePlugin({
  reads: ['source', 'layout', 'layoutFile', 'disks', 'deploy', 'profile'],
  writes: ['artifacts'],
  summary: 'extracts a rootfs tarball (tar, tar.gz, tar.zst) onto the mounted filesystems of the layout',
  validate(objects) {
    const source = requireSource(objects, 'rootfs-tar');
    if (source.content !== 'rootfs')
      throw new ValidationError(`rootfs-tar deploys tarballs; ${source.uri} is ${source.format}`);
    deployTarget(objects, 'rootfs-tar');
    rootVolume(requireLayout(objects, 'rootfs-tar'), objects.layoutFile);
  },
  describe(objects) {
    const layout = objects.layout!;
    const mounts = layoutVolumes(layout)
      .filter((p) => p.mount)
      .map((p) => `${p.mount} (${p.fs?.type})`);
    const digest = expectedDigest(objects.source!);
    return [
      `extract ${objects.source!.format} ${objects.source!.uri} onto ${mounts.join(', ')}`,
      `verify ${objects.deploy!.verify && digest ? `${digest.algorithm} ${digest.hex}` : objects.profile ? 'no (the stream comes from this build; its sha256 goes into the manifest)' : 'off (--no-verify)'}`,
    ];
  },
  async run(ctx) {
    const source = requireSource(ctx.objects, 'rootfs-tar');
    const target = deployTarget(ctx.objects, 'rootfs-tar');
    await target.prepare();
    const tree = await rootTree(target);
    const root = tree.dir;
    const meter = new HashMeter();
    const tar = execa('tar', [...TAR_EXTRACT_ARGS, root], {
      stdin: 'pipe',
      cancelSignal: ctx.signal,
      reject: false,
      all: true,
    });
    tar.stdin!.on('error', () => {});
    ctx.progress.start(source.compression ? undefined : source.size);
    const feed = pipeline(
      [
        await source.open(ctx.signal),
        meter,
        ...(source.compression ? [decompressor(source.compression, ctx.signal, source.uri)] : []),
        progressMeter(ctx.progress),
        new TarFilter({ decide: extractGuard() }),
        tar.stdin!,
      ] as never,
      { signal: ctx.signal },
    );
    const [fed, r] = await Promise.allSettled([feed, tar]);
    if (fed.status === 'rejected') {
      tar.kill();
      const done = r.status === 'fulfilled' ? r.value : undefined;
      // tar died first (a full disk, a bad target): the broken pipe is a consequence, tar's output says why
      if (!(fed.reason instanceof BareonError) && done && done.exitCode !== 0 && !ctx.signal.aborted) {
        throw new BareonError(`tar failed to extract ${source.uri} (exit ${done.exitCode})`, {
          details: String(done.all).split('\n').slice(-15).join('\n'),
        });
      }
      throw fed.reason;
    }
    const result = (r as PromiseFulfilledResult<Awaited<typeof tar>>).value;
    if (result.exitCode !== 0)
      throw new BareonError(`tar failed to extract ${source.uri} (exit ${result.exitCode})`, {
        details: String(result.all).split('\n').slice(-15).join('\n'),
      });
    checkSourceDigest(source, ctx.objects.deploy!.verify, meter);

    // vfat cannot be mounted here: what the tarball put under an ESP mount point moves onto the ESP with mtools
    const vfatMounts = disksWithTargets(ctx.objects, 'rootfs-tar').flatMap(({ target: t }) =>
      t.geometry!.partitions.filter((q) => q.spec.fs?.type === 'vfat' && q.spec.mount).map((p) => ({ t, p })),
    );
    for (const { t, p } of vfatMounts) {
      // mcopy reads through links and device nodes: a hostile tarball could copy this machine's files onto the ESP
      const dir = await tree.plainDir(p.spec.mount!, `${p.spec.mount} in ${source.uri}`);
      const ref = await t.partition(p.number);
      await target.executor.run(
        [
          'sh',
          '-c',
          `[ -d ${shq(dir)} ] && cd ${shq(dir)} || exit 0; if [ -n "$(ls -A)" ]; then mcopy -s -p -Q -o -i ${shq(`${ref.path}@@${ref.offset}`)} ./* ::/ && find . -mindepth 1 -delete; fi`,
        ],
        {
          step: `copy ${p.spec.mount} onto its vfat partition`,
        },
      );
    }
    // what was written where: the manifest of a build to disk records it
    ctx.objects.artifacts.push({
      uri: target.path,
      format: 'deployed',
      sha256: meter.sha256,
      size: meter.size,
      virtual_size: target.size,
      table: target.geometry!.table,
      partitions: artifactPartitions(target.geometry!),
    });
    const digest = ctx.objects.deploy!.verify && expectedDigest(source);
    ctx.setTitle(
      `extracted ${source.format} (${formatBytes(meter.size)}) onto ${target.path}${digest ? `, ${digest.algorithm} verified` : ''}`,
    );
  },
});
