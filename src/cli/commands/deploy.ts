import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../../core/errors.js';
import { runPlugins } from '../../core/manager.js';
import { PluginRegistry } from '../../core/plugins/registry.js';
import type { QueueEntry } from '../../core/plugins/types.js';
import { loadLayout, type Objects } from '../../objects/index.js';
import type { Session } from '../session.js';

/** The deploy actions, in the order DESIGN.md gives them. */
export const DEPLOY_ACTIONS = ['partitioning', 'filesystems', 'deploy', 'fstab', 'bootloader', 'configdrive'] as const;

export type SourceFormat = 'qcow2' | 'raw' | 'tar' | 'tar.gz' | 'tar.zst' | 'manifest';

/** Tells a source's format from its first bytes (and a manifest by its name). */
export async function detectSourceFormat(file: string): Promise<SourceFormat> {
  if (file.endsWith('.manifest.json')) return 'manifest';
  const fh = await open(file, 'r').catch((err) => {
    throw new ValidationError(`source ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, {
      hint: 'give a disk image, a rootfs tarball or a <name>.manifest.json written by bareon-build',
    });
  });
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (head.subarray(0, 4).equals(Buffer.from('QFI\xfb', 'latin1'))) return 'qcow2';
    if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (head.readUInt32LE(0) === 0xfd2fb528) return 'tar.zst';
    if (bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return 'raw';
  } finally {
    await fh.close();
  }
}

/** Checks that a target is a block device, an existing regular file, or a new file in an existing directory. */
export async function checkTarget(target: string): Promise<'block' | 'file'> {
  const st = await stat(target).catch(() => undefined);
  if (!st) {
    const dir = await stat(path.dirname(path.resolve(target))).catch(() => undefined);
    if (!dir?.isDirectory()) throw new ValidationError(`target ${target}: neither a device nor a file, and its directory does not exist`);
    return 'file';
  }
  if (st.isBlockDevice()) return 'block';
  if (st.isFile()) return 'file';
  throw new ValidationError(`target ${target} is not a block device or a regular file`, { hint: 'give /dev/sdX, /dev/nvmeXnY or an image file path' });
}

function actionList(value: string | undefined, flag: string): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(DEPLOY_ACTIONS as readonly string[]).includes(n));
  if (unknown.length) throw new ValidationError(`${flag}: unknown action(s) ${unknown.join(', ')}`, { hint: `deploy actions: ${DEPLOY_ACTIONS.join(', ')}` });
  return names;
}

export async function deployCommand(
  source: string,
  target: string,
  opts: { layout?: string; only?: string; skip?: string; yes: boolean; dryRun: boolean },
  session: Session,
): Promise<void> {
  const format = await detectSourceFormat(source);
  await checkTarget(target);
  const only = actionList(opts.only, '--only');
  const skip = actionList(opts.skip, '--skip') ?? [];
  const objects: Objects = { artifacts: [], target, source: { path: source, format } };
  if (opts.layout) {
    objects.layout = await loadLayout(opts.layout);
    objects.layoutFile = opts.layout;
  }
  const queue: QueueEntry[] = (only ?? [...DEPLOY_ACTIONS])
    .filter((name) => !skip.includes(name))
    .map((name) => ({ namespace: 'bareon.actions', name }));
  await runPlugins({
    registry: await PluginRegistry.discover(),
    queue,
    objects,
    flags: { dryRun: opts.dryRun, yes: opts.yes, noCache: false },
    ...session,
  });
}
