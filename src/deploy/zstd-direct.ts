import { spawn } from 'node:child_process';
import { readFile, open } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BareonError } from '../core/errors.js';
import type { Progress } from '../core/plugins/types.js';
import type { DeploySource, DiskTarget } from '../objects/index.js';
import { decompressHead } from '../source/decompress.js';
import { HashMeter, progressMeter } from '../stream/artifact-writer.js';
import { hashOpenFile } from '../stream/hash-file.js';

/** Passes a stream through, except its first `n` bytes, which it keeps. */
class HeadSplitter extends Transform {
  private readonly kept: Buffer[] = [];
  private have = 0;
  constructor(private readonly n: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err: null, chunk?: Buffer) => void): void {
    if (this.have >= this.n) return done(null, chunk);
    const take = Math.min(this.n - this.have, chunk.length);
    this.kept.push(Buffer.from(chunk.subarray(0, take)));
    this.have += take;
    done(null, take < chunk.length ? chunk.subarray(take) : undefined);
  }
  /** A buffer of `n` bytes to fill with head bytes read some other way. */
  keep(n: number): Buffer {
    const buf = Buffer.alloc(n);
    this.kept.push(buf);
    return buf;
  }
  get head(): Buffer {
    return Buffer.concat(this.kept);
  }
}

/** The file offset of an open descriptor of this process (shared with a child that inherited it). */
async function fdPosition(fd: number): Promise<number> {
  const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
  return Number(/^pos:\s*(\d+)/m.exec(info)![1]);
}

export interface DirectWrite {
  /** Bytes of disk the source expanded to. */
  length: number;
  /** The head frame's bytes, not yet on the target: the caller writes them after verifying. */
  head: Buffer;
  /** sha256 and size of the source as stored. */
  digest: { sha256: string; size: number };
}

/**
 * Decompresses a head-frame raw.zst (see `DeploySource.headFrame`) onto a target: the zstd tool writes
 * everything after the head straight onto the target through an inherited descriptor, so the disk
 * image never passes through this process. A local file zstd reads itself, from just past the head
 * frame, while this process hashes the file beside it (the page cache serves both readers); any
 * other source is fed to zstd through here, hashed on the way. Zero runs become seeks only where the
 * target reads back zeros.
 */
export async function writeZstdDirect(source: DeploySource, target: DiskTarget, progress: Progress, signal: AbortSignal): Promise<DirectWrite> {
  const frame = source.headFrame!;
  const fh = await open(target.path, 'r+');
  const local = source.file ? await open(source.file, 'r') : undefined;
  try {
    // The descriptor's offset is where zstd starts writing: skip the head by reading over it.
    for (let skipped = 0; skipped < frame.size; ) {
      const { bytesRead } = await fh.read(Buffer.alloc(frame.size - skipped), 0, frame.size - skipped, null);
      if (bytesRead === 0) throw new BareonError(`target ${target.path} is smaller than the image's first ${frame.size} bytes`);
      skipped += bytesRead;
    }
    const sparse = target.zeroFrom <= frame.size;
    const meter = new HashMeter();
    progress.start(source.size);
    const split = new HeadSplitter(local ? 0 : frame.length);
    if (local) {
      // read over the head frame on the descriptor that zstd then gets as its stdin
      const { bytesRead } = await local.read(split.keep(frame.length), 0, frame.length, null);
      if (bytesRead !== frame.length) throw new BareonError(`${source.uri} ends inside its head frame`);
    }
    // node's spawn, not execa: zstd's stdout must be this very descriptor, at this offset
    const zstd = spawn('zstd', ['-dc', '-q', sparse ? '--sparse' : '--no-sparse'], { stdio: [local ? local.fd : 'pipe', fh.fd, 'pipe'], signal });
    zstd.stdin?.on('error', () => {}); // zstd's exit status tells what went wrong
    let stderr = '';
    zstd.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => {
      zstd.on('error', (err) => {
        stderr ||= err.message;
        if (zstd.pid === undefined) resolve(null); // never started (no zstd): no 'close' follows
      });
      zstd.on('close', (code) => resolve(code));
    });
    // A local file is hashed beside zstd, which reads it itself: both read the one open file (a path
    // renamed over meanwhile changes neither), the hash by position, so that zstd's offset stays its
    // own. As with qemu-img, a file rewritten in place during the deploy is not caught. Any other
    // source is hashed on its way to zstd.
    let fedError: (Error & { code?: string }) | undefined;
    const fed = (local ? hashOpenFile(local, { progress, signal }) : pipeline([await source.open(signal), meter, split, progressMeter(progress), zstd.stdin!] as never, { signal }).then(() => meter))
      .catch((err: Error) => {
        fedError = err;
        zstd.kill();
      });
    // zstd must have exited before anything else touches the target
    const code = await exited;
    const digest = await fed;
    if (signal.aborted) throw signal.reason;
    const zstdClosedStdin = fedError?.code === 'EPIPE' || fedError?.code === 'ERR_STREAM_PREMATURE_CLOSE';
    if (fedError && !zstdClosedStdin) throw fedError;
    if (code !== 0 || fedError) {
      throw new BareonError(`zstd: the zst stream of ${source.uri} is corrupt or truncated: ${stderr.trim().split('\n').pop() || `exit ${code}`}`, { hint: 'the source ended early or is damaged' });
    }
    const length = await fdPosition(fh.fd);
    if (length > target.size) {
      if (target.kind === 'file') await fh.truncate(target.size);
      throw new BareonError(`the image is larger than the target: it goes past ${target.size} bytes of ${target.path}`);
    }
    const head = await decompressHead('zst', split.head, frame.size + 1);
    if (head.length !== frame.size) throw new BareonError(`zstd: the head frame of ${source.uri} expands to ${head.length} bytes, not the ${frame.size} it declares`);
    if (local) progress.done();
    return { length, head, digest: { sha256: digest!.sha256, size: digest!.size } };
  } finally {
    await local?.close();
    await fh.close();
  }
}
