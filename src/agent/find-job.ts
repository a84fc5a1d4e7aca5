import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CleanupStack } from '../core/cleanup.js';
import { ValidationError } from '../core/errors.js';
import { HostExecutor } from '../host/executor.js';
import { tempDir } from '../host/mount.js';
import { JOB_LABEL } from '../objects/job.js';

/** Where a job was found: its text, and the base that its relative paths resolve against. */
export interface FoundJob {
  text: string;
  /** A directory (job disk) or a URL (bareon.job=). */
  base: string;
  /** For messages: "/dev/vdd (label bareon-job)" or the URL. */
  origin: string;
}

/** The `bareon.job=` URL on a kernel command line, if any. */
export function jobUrlFromCmdline(cmdline: string): string | undefined {
  return /(?:^|\s)bareon\.job=(\S+)/.exec(cmdline)?.[1];
}

/** Reads job.yaml, job.yml or job.json from a directory. */
export async function readJobDir(dir: string, origin: string): Promise<FoundJob> {
  for (const name of ['job.yaml', 'job.yml', 'job.json']) {
    const file = path.join(dir, name);
    if ((await stat(file).catch(() => undefined))?.isFile()) return { text: await readFile(file, 'utf8'), base: dir, origin: `${origin}: ${name}` };
  }
  throw new ValidationError(`${origin} holds no job.yaml or job.json`);
}

/**
 * The job of this boot: from `bareon.job=URL` on the kernel command line, else from the disk or
 * config drive labelled bareon-job (mounted read-only until the run ends).
 */
export async function findJob(cleanup: CleanupStack, signal: AbortSignal, cmdline?: string): Promise<FoundJob> {
  const url = jobUrlFromCmdline(cmdline ?? (await readFile('/proc/cmdline', 'utf8')));
  if (url) {
    const res = await fetch(url, { signal });
    if (!res.ok) throw new ValidationError(`bareon.job=${url}: HTTP ${res.status}`);
    return { text: await res.text(), base: url, origin: url };
  }
  const ex = new HostExecutor(signal);
  // blkid reads /proc/partitions itself: no udev needed
  const found = await ex.run(['blkid', '--match-token', `LABEL=${JOB_LABEL}`, '--output', 'device'], { allowFailure: true });
  const dev = found.stdout.split('\n').find(Boolean);
  if (!dev) throw new ValidationError(`no job: no disk labelled ${JOB_LABEL} and no bareon.job= on the kernel command line`);
  const dir = await tempDir(cleanup, 'job', { mountPoint: true });
  await ex.run(['mount', '-o', 'ro', dev, dir], { step: `mount the job disk ${dev}` });
  cleanup.defer(() => new HostExecutor().run(['umount', dir], { allowFailure: true }), `unmount ${dir}`);
  return readJobDir(dir, `${dev} (label ${JOB_LABEL})`);
}
