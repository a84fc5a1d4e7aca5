import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { BareonError } from '../core/errors.js';

export interface HeadFrameOptions {
  /** Bytes of the stream that go into the first frame (the boot sectors and partition table). */
  headBytes: number;
  /** zstd level of the rest (the head is tiny and always level 19). */
  level?: number;
  /** Length of the whole stream, when known: written into the second frame's header. */
  totalBytes?: number;
  signal?: AbortSignal;
}

/**
 * Compresses a disk image stream as two zstd frames: the first `headBytes`, then the rest (multi-
 * threaded). Any zstd decompresses the result as one stream; bareon-deploy recognises the split and
 * writes the rest straight onto a disk while the head waits in memory for the checksum.
 */
export function zstdHeadFrameCompressor(opts: HeadFrameOptions): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const it = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let have = 0;
    let rest: Buffer | undefined;
    while (have < opts.headBytes) {
      const next = await it.next();
      if (next.done) break;
      const take = Math.min(opts.headBytes - have, next.value.length);
      head.push(next.value.subarray(0, take));
      have += take;
      if (take < next.value.length) rest = next.value.subarray(take);
    }
    const { execa } = await import('execa');
    const headFrame = await execa('zstd', ['-q', '-c', '-19', `--stream-size=${have}`], {
      input: Buffer.concat(head),
      encoding: 'buffer',
      cancelSignal: opts.signal,
    });
    yield Buffer.from(headFrame.stdout);

    const restSize = opts.totalBytes === undefined ? [] : [`--stream-size=${opts.totalBytes - have}`];
    const child = execa('zstd', ['-q', '-c', '-T0', `-${opts.level ?? 3}`, ...restSize], {
      stdin: 'pipe',
      stdout: 'pipe',
      buffer: { stdout: false },
      cancelSignal: opts.signal,
      reject: false,
    });
    child.stdin!.on('error', () => {}); // the exit status tells
    const feed = (async () => {
      try {
        const write = async (chunk: Buffer) => {
          if (!child.stdin!.write(chunk)) await once(child.stdin!, 'drain');
        };
        if (rest) await write(rest);
        for (let next = await it.next(); !next.done; next = await it.next()) await write(next.value);
      } finally {
        child.stdin!.end();
      }
    })();
    feed.catch(() => child.kill());
    for await (const chunk of child.stdout!) yield chunk as Buffer;
    await feed;
    const r = await child;
    if (r.exitCode !== 0)
      throw new BareonError(`zstd failed compressing the disk image (exit ${r.exitCode}): ${String(r.stderr).trim()}`);
  });
}
