import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { runStep } from '../build/step-runner.js';
import { baseKey, findCachedStep, stepKey } from '../build/step-cache.js';
import { PACKAGE_MANAGERS } from '../build/package-manager.js';
import type { BuildStep } from '../build/build-step.js';
import type { CleanupStack } from '../core/cleanup.js';
import { ToolError } from '../core/tool-error.js';
import { explainStartFailure, type DockerEngine } from '../docker/engine.js';
import type { DiskExecutor } from '../core/disk-executor.js';
import { lazyPackage } from '../core/lazy-package.js';

/** tar-stream loads with the first archive read or written. */
const tar = lazyPackage<typeof import('tar-stream')>('tar-stream');

/** The disk tools an image build needs, installed in the toolbox image. */
export const TOOLBOX_PACKAGES = [
  'gdisk',
  'fdisk',
  'dosfstools',
  'mtools',
  'e2fsprogs',
  'xfsprogs',
  'btrfs-progs',
  'qemu-utils',
  'grub-common',
  'grub-pc-bin',
  'grub-efi-amd64-bin',
  // unified kernel images: objcopy assembles them, sbsign signs them
  'binutils',
  'sbsigntool',
  // config drives on iso9660
  'xorriso',
];

const toolboxStep: BuildStep = {
  kind: 'toolbox',
  title: 'toolbox',
  options: { packages: TOOLBOX_PACKAGES },
  script: PACKAGE_MANAGERS.apt.install(TOOLBOX_PACKAGES),
};

/** The toolbox image for `baseImage` (an apt-based image), built once and then taken from the step cache. */
export async function ensureToolbox(
  engine: DockerEngine,
  baseImage: string,
  opts: { cleanup: CleanupStack; signal: AbortSignal; onLine?: (line: string) => void },
): Promise<{ image: string; cached: boolean }> {
  const key = stepKey(baseKey(baseImage), toolboxStep);
  const cached = await findCachedStep(engine, key);
  if (cached) return { image: cached, cached: true };
  const image = await runStep(
    toolboxStep,
    baseImage,
    key,
    { log: opts.onLine ?? (() => {}) },
    { engine, cleanup: opts.cleanup, signal: opts.signal, profile: 'bareon-toolbox' },
    'toolbox',
  );
  return { image, cached: false };
}

/** Runs disk tools in a long-lived toolbox container; files cross the Docker API as tar archives. */
export class ToolboxExecutor implements DiskExecutor {
  private inputs = 0;

  constructor(
    private readonly engine: DockerEngine,
    readonly containerId: string,
  ) {}

  /** Starts a toolbox container (removed by the cleanup stack) and returns its executor. */
  static async start(engine: DockerEngine, image: string, cleanup: CleanupStack): Promise<ToolboxExecutor> {
    const container = await engine.createContainer({
      image,
      cmd: ['sleep', 'infinity'],
      labels: { 'org.bareon.role': 'toolbox' },
    });
    cleanup.defer(() => engine.removeContainer(container.id), `remove toolbox ${container.id.slice(0, 12)}`);
    await container.start().catch(explainStartFailure);
    return new ToolboxExecutor(engine, container.id);
  }

  async run(
    cmd: string[],
    opts: { step?: string; onLine?: (line: string) => void; allowFailure?: boolean; input?: string } = {},
  ) {
    let argv = cmd;
    if (opts.input !== undefined) {
      // exec has no stdin here: the input goes through a file in the container
      const file = `/tmp/bareon-stdin-${++this.inputs}`;
      await this.writeFile(file, Buffer.from(opts.input), 0o600);
      argv = ['sh', '-c', 'f=$1; shift; "$@" < "$f"; s=$?; rm -f "$f"; exit $s', 'sh', file, ...cmd];
    }
    const result = await this.engine.exec(this.containerId, argv, { onLine: opts.onLine, tailLines: 30 });
    if (result.exitCode !== 0 && !opts.allowFailure)
      throw new ToolError(opts.step ?? 'toolbox', cmd, result.exitCode, result.tail);
    return result;
  }

  async writeFile(path: string, data: Buffer, mode = 0o644): Promise<void> {
    const pack = tar().pack();
    pack.entry({ name: posix.basename(path), mode, uid: 0, gid: 0, size: data.length }, data);
    pack.finalize();
    await this.run(['mkdir', '-p', posix.dirname(path)]);
    await this.engine.putArchive(this.containerId, posix.dirname(path), pack as never);
  }

  async readFile(path: string): Promise<Buffer> {
    return buffer(await this.openFile(path));
  }

  /** Streams one file out of the container: the Docker API answers with a tar of one entry. */
  async openFile(path: string): Promise<Readable> {
    const archive = await this.engine.getArchive(this.containerId, path);
    const extract = tar().extract();
    return new Promise<Readable>((resolve, reject) => {
      extract.once('entry', (header, stream, next) => {
        if (header.name !== posix.basename(path)) reject(new Error(`unexpected ${header.name} while reading ${path}`));
        stream.on('end', next);
        resolve(stream as unknown as Readable);
      });
      extract.on('finish', () => reject(new Error(`${path}: empty archive`)));
      extract.on('error', reject);
      archive.on('error', (err) => extract.destroy(err));
      archive.pipe(extract);
    });
  }
}
