import { Writable } from 'node:stream';

/** Keeps the last `max` lines written to it. */
export class LineTail {
  private readonly lines: string[] = [];
  constructor(private readonly max: number) {}
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
  }
  toString(): string {
    return this.lines.join('\n');
  }
}

/** A writable that splits text into lines and hands each complete line to `onLine`. */
export function lineSplitter(onLine: (line: string) => void): Writable {
  let pending = '';
  return new Writable({
    decodeStrings: false,
    write(chunk: Buffer | string, _enc, done) {
      pending += chunk.toString();
      const parts = pending.split(/\r?\n|\r/);
      pending = parts.pop() ?? '';
      for (const line of parts) onLine(line);
      done();
    },
    final(done) {
      if (pending) onLine(pending);
      pending = '';
      done();
    },
  });
}

/** Collects text up to `limit` bytes, keeping the most recent part. */
export class CappedText {
  private chunks: string[] = [];
  private length = 0;
  constructor(private readonly limit = 1 << 20) {}
  append(text: string): void {
    this.chunks.push(text);
    this.length += text.length;
    while (this.length > this.limit && this.chunks.length > 1) this.length -= this.chunks.shift()!.length;
  }
  toString(): string {
    return this.chunks.join('');
  }
}
