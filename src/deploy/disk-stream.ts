import { pipeline } from 'node:stream/promises';
import type { Progress } from '../core/progress.js';
import { MiB } from '../core/size.js';
import type { DeploySource, DiskTarget } from '../objects/index.js';
import { HashMeter, progressMeter } from '../stream/artifact-writer.js';
import { DiskWriter } from '../stream/disk-writer.js';
import { checkSourceDigest } from './checksum.js';

export interface DiskStreamOptions {
  /** Stream stages between the stored bytes and the disk: a decompressor (gunzip, `bzip2 -dc`…). */
  stages?: NodeJS.ReadWriteStream[];
  /** Check the stored bytes against the source's sha256. */
  verify: boolean;
  progress: Progress;
  signal: AbortSignal;
}

/**
 * Streams a whole-disk image onto `target` as bareon's deployers do: the stored bytes hashed in
 * flight (and checked against the source's sha256 and size), zeros skipped where the target reads
 * back zeros, nothing past the target's end, and the first MiB (the partition table) written only
 * after the check passed. The caller has called `target.prepare()`, which clears the tables again
 * if the run fails. Returns the bytes written and the first MiB.
 */
export async function writeDiskStream(
  source: DeploySource,
  target: DiskTarget,
  opts: DiskStreamOptions,
): Promise<{ length: number; head: Buffer }> {
  const meter = new HashMeter();
  const writer = new DiskWriter(target.path, {
    flags: 'r+',
    zeroFrom: target.zeroFrom,
    holdHead: MiB,
    limit: target.size,
  });
  opts.progress.start(source.virtualSize);
  await pipeline(
    [await source.open(opts.signal), meter, ...(opts.stages ?? []), progressMeter(opts.progress), writer] as never,
    { signal: opts.signal },
  );
  checkSourceDigest(source, opts.verify, meter);
  const head = await writer.commitHead();
  return { length: writer.length, head };
}
