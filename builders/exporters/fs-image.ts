import path from 'node:path';
import { z } from 'zod';
import { definePlugin, fixedBytes, MiB, sizeField } from 'bareon';
import { makeUuid, workspaceSubtasks, WORK_DIR, type ImageWorkspace, withHeadroom } from 'bareon/disk';
import { progressMeter, writeArtifactFile } from 'bareon/stream';
import { requireBuildOutput } from './build-output.js';

/** A bare ext4 filesystem image of the root tree (no partition table), made with mkfs.ext4 -d in the toolbox. */
export const ext4 = definePlugin({
  reads: ['rootfs', 'profile', 'outDir', 'epoch', 'build'],
  writes: ['artifacts'],
  summary: 'ext4 filesystem image of the root filesystem (mkfs.ext4 -d in the toolbox), sparse on the host',
  options: z.strictObject({
    label: z.string().max(16).default('root'),
    uuid: z.uuid().optional(),
    /** A size, or auto: the tree plus 30 %. */
    size: z.union([z.literal('auto'), sizeField({ allowRelative: false })]).default('auto'),
  }),
  validate(objects) {
    requireBuildOutput(objects, 'ext4');
  },
  async run(ctx) {
    let ws: ImageWorkspace;
    const image = `${WORK_DIR}/rootfs.ext4`;
    return [
      ...workspaceSubtasks(ctx, (w) => (ws = w)),
      {
        title: 'mkfs.ext4 -d',
        async run(io) {
          const { size: wanted, label } = ctx.options;
          const size = fixedBytes(wanted) ?? withHeadroom(ws.rootBytes);
          const uuid = ctx.options.uuid ?? makeUuid(undefined, 'ext4');
          await ws.executor.run(
            ['mkfs.ext4', '-F', '-q', '-L', label, '-U', uuid, '-d', ws.rootDir, image, `${Math.floor(size / 1024)}k`],
            { step: 'mkfs.ext4', onLine: io.log },
          );
          await ws.executor.run(['e2fsck', '-fn', image], { step: 'e2fsck' });
          const file = path.join(ctx.objects.outDir!, `${ctx.objects.profile!.name}.ext4`);
          io.progress.start(size);
          const { sha256, size: bytes } = await writeArtifactFile(
            file,
            await ws.executor.openFile(image),
            [progressMeter(io.progress)],
            {
              cleanup: ctx.cleanup,
              signal: ctx.signal,
              sparse: true,
            },
          );
          ctx.objects.artifacts.push({
            uri: path.basename(file),
            format: 'ext4',
            sha256,
            size: bytes,
            virtual_size: bytes,
          });
          io.setTitle(`${path.basename(file)}: ${(bytes / MiB).toFixed(0)} MiB, UUID ${uuid}`);
        },
      },
    ];
  },
});
