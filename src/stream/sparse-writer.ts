import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

const BLOCK = 64 * 1024;

const isZero = (b: Buffer) => {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
};

/**
 * Writes a stream into a new file, seeking over 64 KiB blocks of zeros instead of writing them, and
 * sets the file's size at the end: a raw disk image stays as sparse on the host as it was made.
 * Only for targets that read back zeros where nothing was written (a fresh file).
 */
export class SparseFileWriter extends Writable {
  private fh: FileHandle | undefined;
  private position = 0;
  private pending = Buffer.alloc(0);

  constructor(private readonly path: string) {
    super({ highWaterMark: 4 * 1024 * 1024 });
  }

  override _construct(done: (err?: Error | null) => void): void {
    open(this.path, 'w').then((fh) => {
      this.fh = fh;
      done();
    }, done);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const whole = data.length - (data.length % BLOCK);
    this.pending = Buffer.from(data.subarray(whole));
    this.writeBlocks(data.subarray(0, whole)).then(() => done(), done);
  }

  private async writeBlocks(data: Buffer): Promise<void> {
    let runStart = -1;
    for (let off = 0; off <= data.length; off += BLOCK) {
      const block = off < data.length ? data.subarray(off, off + BLOCK) : undefined;
      const zero = !block || isZero(block);
      if (!zero && runStart < 0) runStart = off;
      if (zero && runStart >= 0) {
        await this.fh!.write(data, runStart, off - runStart, this.position + runStart);
        runStart = -1;
      }
    }
    this.position += data.length;
  }

  override _final(done: (err?: Error | null) => void): void {
    (async () => {
      if (this.pending.length) {
        if (!this.pending.every((b) => b === 0)) await this.fh!.write(this.pending, 0, this.pending.length, this.position);
        this.position += this.pending.length;
      }
      await this.fh!.truncate(this.position);
      await this.fh!.sync();
    })().then(() => done(), done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    (this.fh ? this.fh.close() : Promise.resolve()).then(() => done(err), () => done(err));
  }
}
