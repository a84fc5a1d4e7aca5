import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import {
  BareonError,
  ValidationError,
  pluginSubtask,
  definePlugin,
  type Plugin,
  type PluginContext,
  type Subtask,
  bareonPackageDir,
  fixedBytes,
  loadLayout,
  MiB,
  type Artifact,
  type DiskTarget,
  type Objects,
  VERSION,
  defineSlot,
} from 'bareon';
import {
  artifactPartitions,
  autoDiskSize,
  assignIdentifiers,
  workspaceSubtasks,
  WORK_DIR,
  type ImageWorkspace,
  refuseStorageStack,
  rootPartition,
} from 'bareon/disk';
import { BmapMapper, progressMeter, writeArtifactFile, zstdHeadFrameCompressor } from 'bareon/stream';
import { requireBuildOutput } from './build-output.js';
import { artifactInputs, reusableArtifact } from 'bareon/containers';

/** The layout bootable profiles get when they name none. */
export const DEFAULT_LAYOUT = 'profiles/layouts/bios-uefi-gpt.yaml';

/** A partitioned disk image built in the toolbox, shared by the raw and qcow2 exporters of one run. */
interface BuiltDisk {
  ws: ImageWorkspace;
  path: string;
  target: DiskTarget;
}

/** The run's built disk: the first disk-image exporter builds it, the others of the run export it too. */
const builtDisk = defineSlot(
  'bareon/disk-image',
  z.custom<BuiltDisk>((v) => typeof v === 'object' && v !== null && 'ws' in v && 'path' in v && 'target' in v),
);

function layoutFile(objects: Objects): string {
  return objects.layoutFile ?? objects.profileFile ?? 'layout';
}

/** Fail-fast checks of everything an image build needs, before any container starts. */
function validateImageLayout(objects: Objects): void {
  const file = layoutFile(objects);
  const layout = objects.layout;
  if (!layout)
    throw new ValidationError(
      `${file}: disk images need a layout (layout: in the profile) or bootable: true for the default`,
    );
  if (layout.disks.length !== 1)
    throw new ValidationError(`${file}: disks: a disk image holds one disk; the layout has ${layout.disks.length}`);
  refuseStorageStack(layout, 'a disk image', file);
  const root = rootPartition(layout, file);
  if (root.partition.fs?.type === 'xfs') {
    throw new ValidationError(
      `${file}: ${root.path}.fs.type: an xfs root cannot be filled without mounting (xfsprogs 6.1 takes only protofiles)`,
      {
        hint: 'use ext4 or btrfs for / in images; xfs works when deploying onto a disk',
      },
    );
  }
  if (layout.bootloader && objects.profile && !objects.profile.bootable) {
    throw new ValidationError(
      `${objects.profileFile ?? 'profile'}: bootable: a layout with a bootloader needs bootable: true (a kernel and GRUB in the image)`,
    );
  }
}

/** A fresh disk image file in the toolbox: partitions are reached by offset, the root tree is staged. */
function fillToolboxDiskTarget(
  target: DiskTarget,
  id: string,
  diskPath: string,
  size: number,
  ws: ImageWorkspace,
): void {
  Object.assign(target, {
    id,
    path: diskPath,
    size,
    executor: ws.executor,
    kind: 'image',
    zeroFrom: 0,
    stagedRoot: ws.rootDir,
    prepare: async () => {},
    partition: async (number: number) => {
      const p = target.geometry?.partitions.find((q) => q.number === number);
      if (!p) throw new BareonError(`disk image: no partition ${number}`);
      return { path: diskPath, offset: p.start, size: p.size, device: false };
    },
    rootDir: async () => ws.rootDir,
    scratchDir: async () => '/tmp',
  } satisfies DiskTarget);
}

/** Builds the partitioned disk in the toolbox: size, partitioning, fstab, bootloader, filesystems, checks. */
function diskSubtasks(ctx: PluginContext, done: (disk: BuiltDisk) => void): Subtask[] {
  let ws: ImageWorkspace;
  const target = {} as DiskTarget;
  const diskPath = `${WORK_DIR}/disk.img`;
  const actions: Subtask[] = ctx.pipeline('image').map((name) => ({
    title: name,
    async run(io) {
      return pluginSubtask(ctx, await ctx.plugins.load('bareon.actions', name), name).run(io);
    },
  }));
  return [
    ...workspaceSubtasks(ctx, (w) => (ws = w)),
    {
      title: 'disk image file',
      async run(io) {
        const disk = ctx.objects.layout!.disks[0];
        const size = fixedBytes(disk.size) ?? autoDiskSize(disk, ws.rootBytes);
        await ws.executor.run(['truncate', '-s', String(size), diskPath], { step: 'create the disk image' });
        fillToolboxDiskTarget(target, disk.id, diskPath, size, ws);
        ctx.objects.disks = [target];
        io.setTitle(
          `disk image: ${(size / 2 ** 20).toFixed(0)} MiB (${disk.size === 'auto' ? 'auto' : 'fixed'}), ${disk.table}`,
        );
      },
    },
    ...actions,
    {
      title: 'verify the partition table and filesystems',
      async run(io) {
        const table = ctx.objects.layout!.disks[0].table;
        const ex = ws.executor;
        if (table === 'gpt') {
          const v = await ex.run(['sgdisk', '-v', diskPath], { step: 'verify the GPT' });
          if (!/No problems found/.test(v.stdout))
            throw new BareonError('sgdisk -v reports problems with the image', { details: v.stdout });
        } else await ex.run(['sfdisk', '--verify', diskPath], { step: 'verify the msdos table' });
        for (const part of target.geometry!.partitions) {
          const fs = part.spec.fs;
          if (fs?.type.startsWith('ext'))
            await ex.run(['e2fsck', '-fn', `${diskPath}?offset=${part.start}`], {
              step: `fsck partition ${part.number}`,
              onLine: io.log,
            });
          if (fs?.type === 'vfat')
            await ex.run(['sh', '-c', `MTOOLS_SKIP_CHECK=1 mdir -i '${diskPath}@@${part.start}' ::/ >/dev/null`], {
              step: `read the vfat partition ${part.number}`,
            });
        }
        io.setTitle(
          `verified: ${table} table and ${target.geometry!.partitions.filter((p) => p.spec.fs).length} filesystems`,
        );
        done({ ws, path: diskPath, target });
      },
    },
  ];
}

function diskArtifact(disk: BuiltDisk, file: string, format: string, sha256: string, size: number): Artifact {
  const geometry = disk.target.geometry!;
  return {
    uri: path.basename(file),
    format,
    sha256,
    size,
    virtual_size: geometry.size,
    table: geometry.table,
    partitions: artifactPartitions(geometry),
  };
}

/**
 * Writes `<name>.bmap` beside the raw image, bmaptool's block map of it (the ranges the raw file
 * holds as data, between the holes its writer left), and lists it in the manifest as format "bmap".
 */
async function writeBmap(ctx: PluginContext, rawFile: string, mapper: BmapMapper, inputs: string): Promise<void> {
  const file = path.join(path.dirname(rawFile), `${path.basename(rawFile, '.raw')}.bmap`);
  const { sha256, size } = await writeArtifactFile(file, Readable.from([Buffer.from(mapper.bmap(), 'latin1')]), [], {
    cleanup: ctx.cleanup,
    signal: ctx.signal,
  });
  ctx.objects.artifacts.push({ uri: path.basename(file), format: 'bmap', sha256, size, inputs });
}

/** The bmap of a raw image reused from the previous build: reused too when intact, else made again from the file. */
async function reuseBmap(ctx: PluginContext, raw: Artifact, inputs: string): Promise<void> {
  const previous = await reusableArtifact(ctx.objects, 'bmap', inputs);
  if (previous) {
    ctx.objects.artifacts.push(previous);
    return;
  }
  const rawFile = path.join(ctx.objects.outDir!, raw.uri);
  const mapper = new BmapMapper();
  const discard = new Writable({ write: (_chunk, _enc, done) => done() });
  await pipeline(createReadStream(rawFile, { highWaterMark: 4 * MiB }), mapper, discard, { signal: ctx.signal });
  await writeBmap(ctx, rawFile, mapper, inputs);
}

/** Converts (for qcow2), checks and streams the disk image out of the toolbox into the output directory. */
function exportSubtask(
  ctx: PluginContext,
  format: DiskFormat,
  compress: boolean,
  inputs: string,
  disk: () => BuiltDisk,
): Subtask {
  return {
    title: `write ${format}`,
    async run(io) {
      const built = disk();
      let source = built.path;
      if (format === 'qcow2') {
        source = `${WORK_DIR}/disk.qcow2`;
        await built.ws.executor.run(['rm', '-f', source]);
        await built.ws.executor.run(
          [
            'qemu-img',
            'convert',
            '-f',
            'raw',
            '-O',
            'qcow2',
            '-o',
            'compat=1.1',
            ...(compress ? ['-c'] : []),
            built.path,
            source,
          ],
          { step: 'qemu-img convert' },
        );
        await built.ws.executor.run(['qemu-img', 'check', source], { step: 'qemu-img check' });
      }
      const file = path.join(ctx.objects.outDir!, `${ctx.objects.profile!.name}.${format}`);
      const sizeOut = await built.ws.executor.run(['stat', '-c', '%s', source]);
      io.progress.start(Number(sizeOut.stdout.trim()));
      const stream = await built.ws.executor.openFile(source);
      const mapper = format === 'raw' ? new BmapMapper() : undefined;
      const stages = [
        progressMeter(io.progress),
        ...(mapper ? [mapper] : []),
        ...(format === 'raw.zst'
          ? [zstdHeadFrameCompressor({ headBytes: MiB, totalBytes: built.target.geometry!.size, signal: ctx.signal })]
          : []),
      ];
      const { sha256, size } = await writeArtifactFile(file, stream, stages, {
        cleanup: ctx.cleanup,
        signal: ctx.signal,
        sparse: format === 'raw',
      });
      ctx.objects.artifacts.push({ ...diskArtifact(built, file, format, sha256, size), inputs });
      if (mapper) await writeBmap(ctx, file, mapper, inputs);
      io.setTitle(`${path.basename(file)}: ${(size / 2 ** 20).toFixed(0)} MiB, sha256 ${sha256.slice(0, 12)}`);
    },
  };
}

type DiskFormat = 'raw' | 'raw.zst' | 'qcow2';

const SUMMARY: Record<DiskFormat, string> = {
  raw: "partitioned, bootable raw disk image, built in a toolbox container (no host privileges), with bmaptool's block map <name>.bmap",
  'raw.zst':
    'the raw disk image zstd-compressed, its first MiB in a frame of its own (bareon-deploy streams the rest straight onto disk)',
  qcow2: 'partitioned, bootable qcow2 disk image (compat 1.1, optional compress), built in a toolbox container',
};

function diskImageExporter(format: DiskFormat): Plugin<{ compress: boolean }> {
  return definePlugin({
    reads: ['rootfs', 'profile', 'layout', 'epoch', 'outDir', 'build'],
    writes: ['artifacts', 'layout', 'disks', 'bareon/disk-image'],
    summary: SUMMARY[format],
    options: z.strictObject({ compress: z.boolean().default(false) }),
    // the image pipeline: partitioning, fstab, bootloader, filesystems, and actions that join it
    uses: { pipeline: 'image' },
    async plan(objects) {
      if (!objects.layout && objects.profile?.bootable) {
        objects.layoutFile = path.join(bareonPackageDir(), DEFAULT_LAYOUT);
        objects.layout = await loadLayout(objects.layoutFile);
      }
      if (objects.layout) assignIdentifiers(objects.layout);
    },
    validate(objects, options) {
      requireBuildOutput(objects, format);
      if (format !== 'qcow2' && options.compress)
        throw new ValidationError(`${format}: compress applies to qcow2 only`);
      validateImageLayout(objects);
    },
    async run(ctx) {
      const inputs = artifactInputs({
        bareon: VERSION,
        image: ctx.objects.rootfs?.image,
        format,
        options: ctx.options,
        layout: ctx.objects.layout,
        hostname: ctx.objects.profile?.hostname,
        hygiene: ctx.objects.profile?.hygiene,
        epoch: ctx.objects.epoch,
      });
      const previous = ctx.flags.noCache ? undefined : await reusableArtifact(ctx.objects, format, inputs);
      if (previous) {
        ctx.objects.artifacts.push(previous);
        if (format === 'raw') await reuseBmap(ctx, previous, inputs);
        ctx.setTitle(`${previous.uri}: up to date (same root filesystem and seeded layout, sha256 verified)`);
        return;
      }
      const existing = builtDisk.get(ctx.objects);
      if (existing) return [exportSubtask(ctx, format, ctx.options.compress, inputs, () => existing)];
      let built: BuiltDisk;
      return [
        ...diskSubtasks(ctx, (d) => {
          built = d;
          builtDisk.set(ctx.objects, d);
        }),
        exportSubtask(ctx, format, ctx.options.compress, inputs, () => built),
      ];
    },
  });
}

export const raw = diskImageExporter('raw');
export const rawZst = diskImageExporter('raw.zst');
export const qcow2 = diskImageExporter('qcow2');
