import { spawn } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BareonError } from '../core/errors.js';
import type { Compression } from '../objects/deploy.js';

const TOOLS: Record<Exclude<Compression, 'gz'>, string[]> = {
  zst: ['zstd', '-dc', '-q'],
  xz: ['xz', '-dc', '-q', '-T0'],
};

/** The decompressor found the compressed stream damaged (not a failure downstream of it). */
export class CorruptStreamError extends BareonError {}

const corrupt = (tool: string, kind: Compression, source: string | undefined, why: string, cause?: unknown) =>
  new CorruptStreamError(
    `${tool}: ${source ? `${source} (${kind})` : `the ${kind} stream`} is corrupt or truncated: ${why}`,
    { hint: 'the source ended early or is damaged; copy or download it again', cause },
  );

/**
 * A decompressing duplex: zlib for gzip, the zstd and xz tools for the others (Node 20's zlib has
 * neither). A corrupt or truncated stream fails the pipeline with a CorruptStreamError naming
 * `source` and carrying the decompressor's message; when the pipeline fails elsewhere (the disk
 * is full, tar exited), the decompressor is stopped and adds no error of its own.
 */
export function decompressor(kind: Compression, signal?: AbortSignal, source?: string): Duplex {
  if (kind === 'gz') return gunzip(source);
  const tool = TOOLS[kind];
  const child = spawn(tool[0], tool.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], signal });
  const out = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  child.stdout.pipe(out, { end: false });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4096);
  });
  // set once the pipeline tears this stream down: the tool's exit is then no news about the data
  let stopped = false;
  // 'close' comes after stdout has ended, so `out` has every byte before it ends
  child.on('close', (code, killedBy) => {
    if (signal?.aborted) return out.destroy(signal.reason as Error);
    if (code === 0) return out.end();
    if (stopped) return out.destroy();
    out.destroy(
      corrupt(
        tool[0],
        kind,
        source,
        stderr.trim().split('\n').pop() || (killedBy ? `killed by ${killedBy}` : `exit ${code}`),
      ),
    );
  });
  child.on('error', (err) =>
    out.destroy(
      signal?.aborted
        ? (signal.reason as Error)
        : new BareonError(`${tool[0]}: ${err.message}`, { hint: `install ${tool[0]}` }),
    ),
  );
  child.stdin.on('error', () => {}); // the exit status tells what went wrong
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  const destroy = duplex._destroy.bind(duplex);
  duplex._destroy = (err, cb) => {
    stopped = true;
    destroy(err, cb);
  };
  duplex.on('close', () => {
    stopped = true;
    child.kill();
  });
  return duplex;
}

/** zlib's gunzip, its own errors (codes Z_*) turned into a CorruptStreamError naming `source`. */
function gunzip(source: string | undefined): Duplex {
  const stream = createGunzip({ chunkSize: 1024 * 1024 });
  const destroy = stream._destroy.bind(stream);
  stream._destroy = (err, cb) =>
    destroy(err, (e) => {
      const code = (e as NodeJS.ErrnoException | null)?.code;
      cb(e && typeof code === 'string' && code.startsWith('Z_') ? corrupt('gzip', 'gz', source, e.message, e) : e);
    });
  return stream;
}

/** The first `n` decompressed bytes of a compressed head (enough to recognise what it holds). */
export async function decompressHead(kind: Compression, head: Buffer, n = 64 * 1024): Promise<Buffer> {
  if (kind === 'gz') {
    const gunzip = createGunzip();
    const chunks: Buffer[] = [];
    let have = 0;
    await new Promise<void>((resolve) => {
      gunzip.on('data', (c: Buffer) => {
        chunks.push(c);
        have += c.length;
        if (have >= n) resolve();
      });
      gunzip.on('error', () => resolve());
      gunzip.on('end', () => resolve());
      gunzip.end(head);
    });
    gunzip.destroy();
    return Buffer.concat(chunks).subarray(0, n);
  }
  // Read only what is needed: a compressed MiB of zeros expands to gigabytes.
  const tool = kind === 'zst' ? ['zstd', '-dc', '-q'] : ['xz', '-dc', '-q'];
  const child = spawn(tool[0], tool.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
  child.on('error', () => {}); // no tool: no bytes, which the caller reports
  child.stdin.on('error', () => {}); // closed early: it has given what was asked
  child.stdin.end(head);
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const chunk of child.stdout) {
    chunks.push(chunk as Buffer);
    have += (chunk as Buffer).length;
    if (have >= n) break;
  }
  child.kill();
  return Buffer.concat(chunks).subarray(0, n);
}
