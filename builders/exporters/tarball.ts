import { execa } from 'execa';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import { createGzip } from 'node:zlib';
import { z } from 'zod';
import { BareonError, definePlugin, type Plugin, VERSION } from 'bareon';
import { progressMeter, writeArtifactFile, requireZstd, toolStage, zstdStage } from 'bareon/stream';
import { requireBuildOutput } from './build-output.js';
import { artifactInputs, reusableArtifact } from 'bareon/containers';

type Compression = 'none' | 'gzip' | 'zstd';

/** pigz, when installed, compresses gzip on every core; zlib is the fallback. */
async function hasPigz(): Promise<boolean> {
  return !(await execa('pigz', ['--version'], { reject: false })).failed;
}

function compressor(kind: Compression, level: number, pigz: boolean): NodeJS.ReadWriteStream[] {
  if (kind === 'gzip')
    return [
      pigz ? toolStage('pigz', ['-c', `-${level}`, '-p', String(availableParallelism())]) : createGzip({ level }),
    ];
  if (kind === 'zstd') return [zstdStage(level)];
  return [];
}

/** A rootfs tarball exporter: docker export → Docker-artifact filter → compressor → sha256 → file. */
function tarball(
  format: string,
  kind: Compression,
  levels: { min: number; max: number; default: number },
): Plugin<{ level: number }> {
  return definePlugin({
    reads: ['rootfs', 'profile', 'epoch', 'outDir'],
    writes: ['artifacts'],
    summary: `root filesystem tarball (${format}), streamed from the container with no staging on disk`,
    options: z.strictObject({ level: z.number().int().min(levels.min).max(levels.max).default(levels.default) }),
    async validate(objects) {
      requireBuildOutput(objects, format);
      if (kind === 'zstd') await requireZstd(format);
    },
    async run(ctx) {
      const { outDir, profile } = requireBuildOutput(ctx.objects, format);
      const rootfs = ctx.objects.rootfs;
      if (!rootfs) throw new BareonError(`${format}: no root filesystem; a builder must run first`);
      const file = path.join(outDir, `${profile.name}.${format}`);
      const inputs = artifactInputs({
        bareon: VERSION,
        image: rootfs.image,
        format,
        options: ctx.options,
        hostname: profile.hostname,
        hygiene: profile.hygiene,
        epoch: ctx.objects.epoch,
      });
      const previous = ctx.flags.noCache ? undefined : await reusableArtifact(ctx.objects, format, inputs);
      if (previous) {
        ctx.objects.artifacts.push(previous);
        ctx.setTitle(
          `export ${path.basename(file)}: up to date (same root filesystem, sha256 ${previous.sha256.slice(0, 12)} verified)`,
        );
        return;
      }
      const pigz = kind === 'gzip' && (await hasPigz());
      ctx.setTitle(`export ${path.basename(file)}`);
      if (kind === 'gzip')
        ctx.log(
          pigz
            ? `gzip with pigz on ${availableParallelism()} cores`
            : 'gzip with zlib on one core (install pigz to use every core)',
        );
      ctx.progress.start(rootfs.apparentSize);
      const source = await rootfs.open(ctx.signal);
      const { sha256, size } = await writeArtifactFile(
        file,
        source,
        [progressMeter(ctx.progress), ...compressor(kind, ctx.options.level, pigz)],
        {
          cleanup: ctx.cleanup,
          signal: ctx.signal,
        },
      );
      ctx.objects.artifacts.push({ uri: path.basename(file), format, sha256, size, inputs });
      ctx.setTitle(`export ${path.basename(file)}: ${(size / 2 ** 20).toFixed(1)} MiB, sha256 ${sha256.slice(0, 12)}`);
    },
  });
}

export const tar = tarball('tar', 'none', { min: 0, max: 0, default: 0 });
export const tarGz = tarball('tar.gz', 'gzip', { min: 1, max: 9, default: 6 });
export const tarZst = tarball('tar.zst', 'zstd', { min: 1, max: 19, default: 3 });
