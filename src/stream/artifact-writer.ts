import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CleanupStack } from '../core/cleanup.js';
import type { Progress } from '../core/progress.js';
import { SparseFileWriter } from './disk-writer.js';

/** Counts bytes into a Progress as they pass. */
export function progressMeter(progress: Progress): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      progress.add(chunk.length);
      done(null, chunk);
    },
    flush(done) {
      progress.done();
      done();
    },
  });
}

/** Hashes and counts what passes through; read `sha256` and `size` after the stream ends. */
export class HashMeter extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;
  sha256 = '';
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err: null, chunk: Buffer) => void): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  override _flush(done: () => void): void {
    this.sha256 = this.hash.digest('hex');
    done();
  }
}

/**
 * Streams `source` through `stages` into `file`, hashing the bytes written. The file appears under
 * its name only when complete: it is written as `file.partial` and renamed; a failure removes it.
 */
export async function writeArtifactFile(
  file: string,
  source: Readable,
  stages: NodeJS.ReadWriteStream[],
  opts: { cleanup: CleanupStack; signal?: AbortSignal; sparse?: boolean },
): Promise<{ sha256: string; size: number }> {
  await mkdir(path.dirname(file), { recursive: true });
  const partial = `${file}.partial`;
  const discard = opts.cleanup.defer(() => rm(partial, { force: true }), `remove ${partial}`);
  const meter = new HashMeter();
  const sink = opts.sparse ? new SparseFileWriter(partial) : createWriteStream(partial);
  await pipeline([source, ...stages, meter, sink] as never, { signal: opts.signal });
  await rename(partial, file);
  await discard();
  return { sha256: meter.sha256, size: meter.size };
}
