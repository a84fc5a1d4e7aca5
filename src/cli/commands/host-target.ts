import { createInterface } from 'node:readline/promises';
import { ValidationError } from '../../core/errors.js';
import {
  describeTarget,
  hostDiskTarget,
  inspectTarget,
  refuseBusyTarget,
  refuseSourceAsTarget,
  type TargetInfo,
} from '../../host/disk-target.js';
import type { DeploySource, DiskTarget } from '../../objects/index.js';
import { parseSize } from '../../core/size.js';
import type { Session } from '../session.js';

/** `--size 8GiB` as bytes; undefined when not given. */
export function sizeOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = parseSize(value);
  if (typeof parsed !== 'string' && parsed.kind === 'bytes' && parsed.bytes === 0)
    throw new ValidationError(`--size: "${value}" is zero`, { hint: 'give the disk size, such as 8GiB' });
  if (typeof parsed === 'string' || parsed.kind !== 'bytes')
    throw new ValidationError(
      `--size: ${typeof parsed === 'string' ? parsed : `"${value}" must be an absolute size such as 8GiB`}`,
    );
  return parsed.bytes;
}

/**
 * The disk a command writes on this host: inspected (created or extended to `size` for a file),
 * refused when busy, its root tree `tree`, and released by the session's cleanup stack on success,
 * failure and Ctrl-C.
 */
export async function openHostTarget(
  targetPath: string,
  opts: {
    id: string;
    size?: number;
    sizeFrom?: string;
    preserveOnError: boolean;
    /** The deploy's source: refused as a target. */
    source?: DeploySource;
    /** The root tree of the layout, mounted once for all disks. */
    tree: () => Promise<string>;
  },
  session: Session,
): Promise<{ info: TargetInfo; target: DiskTarget }> {
  const info = await inspectTarget(targetPath, opts.size, opts.sizeFrom);
  await refuseBusyTarget(info);
  if (opts.source?.file) await refuseSourceAsTarget(info, opts.source.file);
  const target = hostDiskTarget(opts.id, info, {
    cleanup: session.cleanup,
    signal: session.signal,
    preserveOnError: opts.preserveOnError,
    log: (line) => session.reporter.print(line),
    warn: (text) => session.reporter.warn(text),
    tree: opts.tree,
  });
  return { info, target };
}

/** Asks on the terminal before a block device is overwritten; refuses without a terminal. */
export async function confirmOverwrite(info: TargetInfo, yes: boolean): Promise<void> {
  if (yes || info.kind === 'file') return;
  if (!process.stdin.isTTY) {
    throw new ValidationError(`refusing to overwrite block device ${describeTarget(info)} without --yes`, {
      hint: 'stdin is not a terminal, so bareon cannot ask; pass --yes to confirm',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `Everything on ${describeTarget(info)} will be overwritten.\nType "yes" to continue: `,
    );
    if (answer.trim() !== 'yes') throw new ValidationError(`not confirmed; ${info.path} was not touched`);
  } finally {
    rl.close();
  }
}
