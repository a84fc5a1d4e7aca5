import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, open } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { BareonError } from '../core/errors.js';
import type { Progress } from '../core/progress.js';
import type { DeploySource, DiskTarget } from '../objects/index.js';
import { MiB } from '../core/size.js';
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
  /** The image's first bytes, not yet on the target: the caller writes them after verifying. */
  head: Buffer;
  /** sha256 and size of the source as stored. */
  digest: { sha256: string; size: number };
}

/** What a one-frame raw.zst holds back: the first MiB, as a head frame would hold. */
const ONE_FRAME_HEAD = MiB;

/**
 * For a raw.zst of one frame: zstd's output runs through two dd's, the first handing the head to this
 * process (fd 3), the second writing the rest straight onto the target (stdout) in 64 KiB blocks, so
 * that zero runs stay holes where they may (conv=sparse). The shell has no pipefail, so zstd's exit
 * status comes back on fd 4.
 */
const splitScript = (sparse: boolean) =>
  `{ zstd -dc -q; echo $? >&4; } | { dd bs=${ONE_FRAME_HEAD} count=1 iflag=fullblock status=none >&3 && ` +
  `dd bs=64K iflag=fullblock conv=notrunc${sparse ? ',sparse' : ''} status=none; }`;

/**
 * The command line that runs `cmd` unable to make a file longer than `bytes` (RLIMIT_FSIZE, inherited
 * by its children): an image whose stream carries no size cannot grow a target file past its size.
 * A block device ends where it ends.
 */
const boundedTo = (target: DiskTarget, cmd: string[]): string[] =>
  target.kind === 'file' ? ['prlimit', `--fsize=${target.size}`, '--', ...cmd] : cmd;

/** The shell's status for a child killed by SIGXFSZ: a write went past RLIMIT_FSIZE. */
const XFSZ_STATUS = 128 + 25;

/** Errors of the writing side, which zstd or dd report on stderr: not the stream's fault. */
const WRITE_FAILURE = /No space left on device|Input\/output error|Read-only file system|File too large/i;

/** A child's exit code (null when it never started or was killed), the signal that ended it, and its stderr. */
function watch(child: ChildProcess): {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
} {
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (err) => {
      stderr ||= err.message;
      if (child.pid === undefined) resolve({ code: null, signal: null }); // never started: no 'close' follows
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { exited, stderr: () => stderr.trim().split('\n').pop() ?? '' };
}

/**
 * Decompresses a raw.zst onto a target without the disk image passing through this process, which
 * holds back only the image's first bytes. With a head frame (see `DeploySource.headFrame`), zstd
 * writes everything after that frame straight onto the target through an inherited descriptor; with
 * one frame, zstd's output goes through a pair of dd's that split off the first MiB (see splitScript).
 * A local file zstd reads itself, while this process hashes the file beside it (the page cache serves
 * both readers); any other source is fed to zstd through here, hashed on the way. Zero runs become
 * seeks only where the target reads back zeros.
 */
export async function writeZstdDirect(
  source: DeploySource,
  target: DiskTarget,
  progress: Progress,
  signal: AbortSignal,
): Promise<DirectWrite> {
  const frame = source.headFrame;
  const headSize = frame?.size ?? ONE_FRAME_HEAD;
  const fh = await open(target.path, 'r+');
  const local = source.file ? await open(source.file, 'r') : undefined;
  try {
    // The descriptor's offset is where the tail is written: skip the head by reading over it.
    for (let skipped = 0; skipped < headSize; ) {
      const { bytesRead } = await fh.read(Buffer.alloc(headSize - skipped), 0, headSize - skipped, null);
      if (bytesRead === 0)
        throw new BareonError(`target ${target.path} is smaller than the image's first ${headSize} bytes`);
      skipped += bytesRead;
    }
    const sparse = target.zeroFrom <= headSize;
    const meter = new HashMeter();
    progress.start(source.size);
    const split = new HeadSplitter(local || !frame ? 0 : frame.length);
    if (local && frame) {
      // read over the head frame on the descriptor that zstd then gets as its stdin
      const { bytesRead } = await local.read(split.keep(frame.length), 0, frame.length, null);
      if (bytesRead !== frame.length) throw new BareonError(`${source.uri} ends inside its head frame`);
    }
    const stdin = local ? local.fd : 'pipe';
    // node's spawn, not execa: the output must be this very descriptor, at this offset
    const [cmd, ...args] = boundedTo(
      target,
      frame ? ['zstd', '-dc', '-q', sparse ? '--sparse' : '--no-sparse'] : ['sh', '-c', splitScript(sparse)],
    );
    const child = frame
      ? spawn(cmd, args, { stdio: [stdin, fh.fd, 'pipe'], signal })
      : spawn(cmd, args, { stdio: [stdin, fh.fd, 'pipe', 'pipe', 'pipe'], signal, detached: true });
    const killGroup = () => {
      try {
        if (!frame && child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group has exited already
      }
    };
    signal.addEventListener('abort', killGroup, { once: true });
    child.stdin?.on('error', () => {}); // the exit status tells what went wrong
    const tool = watch(child);
    const oneFrame = frame
      ? undefined
      : { head: buffer(child.stdio[3] as Readable), zstdStatus: buffer(child.stdio[4] as Readable) };
    void oneFrame?.head.catch(() => {}); // awaited only when the tools succeeded
    // A local file is hashed beside zstd, which reads it itself: both read the one open file (a path
    // renamed over meanwhile changes neither), the hash by position, so that zstd's offset stays its
    // own. As with qemu-img, a file rewritten in place during the deploy is not caught. Any other
    // source is hashed on its way to zstd.
    let fedError: (Error & { code?: string }) | undefined;
    const fed = (
      local
        ? hashOpenFile(local, { progress, signal })
        : pipeline([await source.open(signal), meter, split, progressMeter(progress), child.stdin!] as never, {
            signal,
          }).then(() => meter)
    ).catch((err: Error) => {
      fedError = err;
      child.kill();
      killGroup();
    });
    // the tools must have exited before anything else touches the target
    const { code, signal: killedBy } = await tool.exited;
    signal.removeEventListener('abort', killGroup);
    const digest = await fed;
    if (signal.aborted) throw signal.reason;
    if (killedBy === 'SIGXFSZ' || code === XFSZ_STATUS) {
      throw new BareonError(
        `the image is larger than the target: it goes past ${target.size} bytes of ${target.path}`,
        { hint: 'give a larger --size or a larger disk' },
      );
    }
    if (WRITE_FAILURE.test(tool.stderr()))
      throw new BareonError(`writing onto ${target.path} failed: ${tool.stderr()}`);
    const zstdClosedStdin = fedError?.code === 'EPIPE' || fedError?.code === 'ERR_STREAM_PREMATURE_CLOSE';
    if (fedError && !zstdClosedStdin) throw fedError;
    const zstdCode = oneFrame ? Number((await oneFrame.zstdStatus).toString().trim() || NaN) : code;
    // the shell's status is the writing dd's: zstd sees a broken pipe when that one fails
    if (oneFrame && code !== 0)
      throw new BareonError(`writing onto ${target.path} failed: ${tool.stderr() || `exit ${code}`}`);
    if (zstdCode !== 0 || fedError) {
      throw new BareonError(
        `zstd: the zst stream of ${source.uri} is corrupt or truncated: ${tool.stderr() || `exit ${code}`}`,
        { hint: 'the source ended early or is damaged' },
      );
    }
    const head = oneFrame ? await oneFrame.head : await decompressHead('zst', split.head, headSize + 1);
    const length = head.length < headSize ? head.length : await fdPosition(fh.fd);
    if (length > target.size) {
      if (target.kind === 'file') await fh.truncate(target.size);
      throw new BareonError(`the image is larger than the target: it goes past ${target.size} bytes of ${target.path}`);
    }
    if (frame && head.length !== frame.size)
      throw new BareonError(
        `zstd: the head frame of ${source.uri} expands to ${head.length} bytes, not the ${frame.size} it declares`,
      );
    if (local) progress.done();
    return { length, head, digest: { sha256: digest!.sha256, size: digest!.size } };
  } finally {
    await local?.close();
    await fh.close();
  }
}
