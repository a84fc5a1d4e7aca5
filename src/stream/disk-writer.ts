import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** The block a DiskWriter skips when it is all zeros (a hole in a new file). */
export const SPARSE_BLOCK = 64 * 1024;
const BLOCK = SPARSE_BLOCK;
const ZEROS = Buffer.alloc(BLOCK);
const isZero = (b: Buffer) => b.equals(b.length === BLOCK ? ZEROS : ZEROS.subarray(0, b.length));

export interface DiskWriterOptions {
  /** "w" creates or empties a file; "r+" writes into an existing file or a block device. */
  flags: 'w' | 'r+';
  /** Where byte 0 of the stream lands on the target. */
  offset?: number;
  /** From this target offset on, all-zero blocks are skipped: the target reads back zeros there. */
  zeroFrom?: number;
  /** Bytes at the start of the stream kept in memory instead of written; `commitHead()` writes them. */
  holdHead?: number;
  /** Set the file's size to the stream's length at the end (a new sparse file). */
  truncate?: boolean;
  /** The target's size: a longer stream fails instead of writing past it. */
  limit?: number;
}

/**
 * Writes a stream at positions of a file or block device. All-zero 64 KiB blocks are skipped only
 * where the target is known to read back zeros (`zeroFrom`); elsewhere zeros are written. The head
 * can be held back and written last, after the caller verified the whole stream, so that a disk
 * never boots half-written. Chunks are batched into large writes; memory stays bounded by the
 * stream's high-water mark.
 */
export class DiskWriter extends Writable {
  private fh: FileHandle | undefined;
  private position = 0;
  private head: Buffer[] = [];
  /** Bytes written to the target (data, and zeros where they could not be skipped). */
  written = 0;

  constructor(
    private readonly path: string,
    private readonly opts: DiskWriterOptions,
  ) {
    super({ highWaterMark: 8 * 1024 * 1024 });
  }

  override _construct(done: (err?: Error | null) => void): void {
    open(this.path, this.opts.flags).then((fh) => {
      this.fh = fh;
      done();
    }, done);
  }

  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    this.writeData(chunks.map((c) => c.chunk)).then(() => done(), done);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.writeData([chunk]).then(() => done(), done);
  }

  /** Writes a batch of chunks, never copied: data runs between skipped zero blocks go out with one writev each. */
  private async writeData(input: Buffer[]): Promise<void> {
    let chunks = input;
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const end = (this.opts.offset ?? 0) + this.position + total;
    if (this.opts.limit !== undefined && end > this.opts.limit) {
      throw new Error(`the image is larger than the target: it goes past ${this.opts.limit} bytes`);
    }
    const hold = this.opts.holdHead ?? 0;
    while (this.position < hold && chunks.length) {
      const n = Math.min(hold - this.position, chunks[0].length);
      this.head.push(Buffer.from(chunks[0].subarray(0, n)));
      this.position += n;
      chunks = n < chunks[0].length ? [chunks[0].subarray(n), ...chunks.slice(1)] : chunks.slice(1);
    }
    const zeroFrom = this.opts.zeroFrom ?? Infinity;
    const start = (this.opts.offset ?? 0) + this.position;
    let at = start;
    // the run of data not yet written, and where it goes
    let run: Buffer[] = [];
    let runAt = at;
    let runBytes = 0;
    const flush = async () => {
      if (runBytes) await this.writeRun(run, runAt, runBytes);
      run = [];
      runBytes = 0;
    };
    // blocks aligned to the target, so that a skipped block is a whole block of the target; a block
    // may span chunks, and is then skipped only if all its pieces are zeros
    let pieces: Buffer[] = [];
    let blockStart = at;
    const endBlock = async () => {
      if (blockStart >= zeroFrom && pieces.every(isZero)) await flush();
      else {
        if (!runBytes) runAt = blockStart;
        run.push(...pieces);
        runBytes += at - blockStart;
      }
      pieces = [];
      blockStart = at;
    };
    for (const chunk of chunks) {
      for (let off = 0; off < chunk.length; ) {
        const n = Math.min(BLOCK - (at % BLOCK), chunk.length - off);
        pieces.push(chunk.subarray(off, off + n));
        off += n;
        at += n;
        if (at % BLOCK === 0) await endBlock();
      }
    }
    if (pieces.length) await endBlock();
    await flush();
    this.position += at - start;
  }

  private async writeRun(buffers: Buffer[], at: number, bytes: number): Promise<void> {
    await writevFully(this.fh!, buffers, at, bytes);
    this.written += bytes;
  }

  override _final(done: (err?: Error | null) => void): void {
    (async () => {
      if (this.opts.truncate) await this.fh!.truncate((this.opts.offset ?? 0) + this.position);
      if (!this.opts.holdHead) await this.fh!.sync();
    })().then(() => done(), done);
  }

  /** Bytes the stream carried. */
  get length(): number {
    return this.position;
  }

  /** Writes the held-back head and flushes everything to the target. Call after the stream ended and was verified. */
  async commitHead(): Promise<Buffer> {
    const head = Buffer.concat(this.head);
    await writeSynced(this.path, head, this.opts.offset ?? 0);
    this.written += head.length;
    this.head = [];
    return head;
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    (this.fh ? this.fh.close() : Promise.resolve()).then(
      () => done(err),
      () => done(err),
    );
  }
}

/** Writes all of `data` at `at` of an open file or block device, however short the single writes come back. */
export async function writeFully(fh: FileHandle, data: Buffer, at: number): Promise<void> {
  for (let done = 0; done < data.length; )
    done += (await fh.write(data, done, data.length - done, at + done)).bytesWritten;
}

/** Writes `buffers` (`bytes` in all) one after another from `at`, with one writev unless it comes back short. */
export async function writevFully(fh: FileHandle, buffers: Buffer[], at: number, bytes: number): Promise<void> {
  const { bytesWritten } = await fh.writev(buffers, at);
  if (bytesWritten >= bytes) return;
  // a short writev: the rest one buffer at a time
  let skip = bytesWritten;
  let pos = at;
  for (const b of buffers) {
    const from = Math.min(skip, b.length);
    skip -= from;
    if (from < b.length) await writeFully(fh, b.subarray(from), pos + from);
    pos += b.length;
  }
}

/** Writes `data` at `offset` of a file or block device and flushes the target (fsync). */
export async function writeSynced(file: string, data: Buffer, offset = 0): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    if (data.length) await fh.write(data, 0, data.length, offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A new sparse file from a stream: zero blocks become holes (the file reads back zeros there). */
export class SparseFileWriter extends DiskWriter {
  constructor(path: string) {
    super(path, { flags: 'w', zeroFrom: 0, truncate: true });
  }
}
