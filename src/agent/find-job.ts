import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CleanupStack } from '../core/cleanup.js';
import { ValidationError } from '../core/errors.js';
import { HostExecutor } from '../host/executor.js';
import { tempDir } from '../host/mount.js';
import { JOB_LABEL } from '../objects/job.js';
import { resolverFromDhcp } from './resolver.js';

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

/**
 * The job at `url`. Right after boot the network may still be coming up (DHCP), so failures to
 * connect or resolve are retried for `waitMs`; an HTTP error answer is final.
 */
export async function fetchJob(
  url: string,
  signal: AbortSignal,
  waitMs = 120_000,
  onWait?: (why: string) => void,
): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    await resolverFromDhcp().catch(() => []);
    let res: Response;
    try {
      res = await fetch(url, { signal });
    } catch (err) {
      const why = String((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
      if (signal.aborted || Date.now() >= deadline)
        throw new ValidationError(`bareon.job=${url}: cannot fetch it (${why}) after ${Math.round(waitMs / 1000)} s`, {
          hint: "check the machine's network and that the URL is reachable from it",
        });
      if (attempt % 5 === 0) onWait?.(`bareon.job=${url}: ${why}; waiting for the network`);
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (!res.ok) throw new ValidationError(`bareon.job=${url}: HTTP ${res.status} ${res.statusText}`);
    return res.text();
  }
}

/** Reads job.yaml, job.yml or job.json from a directory. */
export async function readJobDir(dir: string, origin: string): Promise<FoundJob> {
  for (const name of ['job.yaml', 'job.yml', 'job.json']) {
    const file = path.join(dir, name);
    if ((await stat(file).catch(() => undefined))?.isFile())
      return { text: await readFile(file, 'utf8'), base: dir, origin: `${origin}: ${name}` };
  }
  throw new ValidationError(`${origin} holds no job.yaml or job.json`);
}

/**
 * The job of this boot: from `bareon.job=URL` on the kernel command line, else from the disk or
 * config drive labelled bareon-job (mounted read-only until the run ends).
 */
export async function findJob(
  cleanup: CleanupStack,
  signal: AbortSignal,
  opts: { cmdline?: string; onWait?: (why: string) => void } = {},
): Promise<FoundJob> {
  const url = jobUrlFromCmdline(opts.cmdline ?? (await readFile('/proc/cmdline', 'utf8')));
  if (url) return { text: await fetchJob(url, signal, undefined, opts.onWait), base: url, origin: url };
  const ex = new HostExecutor(signal);
  // blkid reads /proc/partitions itself: no udev needed
  const found = await ex.run(['blkid', '--match-token', `LABEL=${JOB_LABEL}`, '--output', 'device'], {
    allowFailure: true,
  });
  const dev = found.stdout.split('\n').find(Boolean);
  if (!dev)
    throw new ValidationError(`no job: no disk labelled ${JOB_LABEL} and no bareon.job= on the kernel command line`);
  const dir = await tempDir(cleanup, 'job', { mountPoint: true });
  await ex.run(['mount', '-o', 'ro', dev, dir], { step: `mount the job disk ${dev}` });
  cleanup.defer(() => new HostExecutor().run(['umount', dir], { allowFailure: true }), `unmount ${dir}`);
  return readJobDir(dir, `${dev} (label ${JOB_LABEL})`);
}
