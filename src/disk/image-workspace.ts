import { BareonError } from '../core/errors.js';
import type { PluginContext, Subtask } from '../plugins/types.js';
import type { DockerEngine } from '../docker/engine.js';
import type { Objects } from '../objects/index.js';
import { progressMeter } from '../stream/artifact-writer.js';
import type { ToolboxExecutor } from './toolbox.js';

/** The toolbox container an image build works in, with the root filesystem copied to `rootDir`. */
export interface ImageWorkspace {
  engine: DockerEngine;
  executor: ToolboxExecutor;
  rootDir: string;
  /** Apparent size of the root tree in bytes. */
  rootBytes: number;
}

export const WORK_DIR = '/work';

/** The base the toolbox is made from: the build's own base image, or a Debian bootstrap. */
async function toolboxBase(engine: DockerEngine, objects: Objects, signal: AbortSignal): Promise<string> {
  if (objects.build?.packageManager === 'apt') return objects.build.baseImage;
  const { bootstrapBase } = await import('../docker/base-image.js');
  return (
    await bootstrapBase(engine, { distro: 'debian', suite: 'bookworm', variant: 'minbase', arch: 'amd64' }, { signal })
  ).id;
}

/**
 * Subtasks that start a toolbox and copy the root filesystem into it through the Docker API (no bind
 * mounts, so a remote DOCKER_HOST works). The workspace is shared by every image exporter of the run.
 */
export function workspaceSubtasks(ctx: PluginContext, ready: (ws: ImageWorkspace) => void): Subtask[] {
  let engine: DockerEngine;
  let image: string;
  let executor: ToolboxExecutor;
  return [
    {
      title: 'toolbox',
      async run(io) {
        // Docker, the toolbox and the build steps load when an image is made, not with bareon/disk
        const [{ DockerEngine }, { ensureToolbox }] = await Promise.all([
          import('../docker/engine.js'),
          import('./toolbox.js'),
        ]);
        engine = await DockerEngine.forRun(ctx.runId, ctx.cleanup);
        const base = await toolboxBase(engine, ctx.objects, ctx.signal);
        const toolbox = await ensureToolbox(engine, base, { cleanup: ctx.cleanup, signal: ctx.signal, onLine: io.log });
        image = toolbox.image;
        io.setTitle(`toolbox ${image.slice(7, 19)} ${toolbox.cached ? '(cached)' : '(built)'}`);
      },
    },
    {
      title: 'copy the root filesystem into the toolbox',
      async run(io) {
        const rootfs = ctx.objects.rootfs;
        if (!rootfs) throw new BareonError('image exporters need a root filesystem: a builder must run first');
        const { ToolboxExecutor } = await import('./toolbox.js');
        executor = await ToolboxExecutor.start(engine, image, ctx.cleanup);
        const rootDir = `${WORK_DIR}/rootfs`;
        await executor.run(['mkdir', '-p', rootDir]);
        io.progress.start(rootfs.apparentSize);
        const stream = (await rootfs.open(ctx.signal)).pipe(progressMeter(io.progress));
        await engine.putArchive(executor.containerId, rootDir, stream);
        const du = await executor.run(['du', '-s', '-B1', '--apparent-size', rootDir], {
          step: 'measure the root filesystem',
        });
        const rootBytes = Number(du.stdout.split(/\s/)[0]);
        io.setTitle(`root filesystem in the toolbox: ${(rootBytes / 2 ** 20).toFixed(0)} MiB`);
        ready({ engine, executor, rootDir, rootBytes });
      },
    },
  ];
}
