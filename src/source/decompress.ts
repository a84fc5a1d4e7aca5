import { execa } from 'execa';
import { Duplex, PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BareonError } from '../core/errors.js';
import type { Compression } from '../objects/deploy.js';

/**
 * A decompressing duplex: zlib for gzip, the zstd and xz tools for the others (Node 20's zlib has
 * neither). A corrupt or truncated stream fails the pipeline with the tool's message.
 */
export function decompressor(kind: Compression, signal?: AbortSignal): Duplex {
  if (kind === 'gz') return createGunzip({ chunkSize: 1024 * 1024 });
  const tool = kind === 'zst' ? ['zstd', '-dc', '-q'] : ['xz', '-dc', '-q', '-T0'];
  const child = execa(tool[0], tool.slice(1), { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: { stdout: false, stderr: true }, cancelSignal: signal, reject: false });
  const out = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  child.stdout!.pipe(out, { end: false });
  child.then((r) => {
    if (r.isCanceled) return out.destroy(signal?.reason as Error);
    if (r.exitCode === 0) return out.end();
    out.destroy(new BareonError(`${tool[0]}: the ${kind} stream is corrupt or truncated: ${String(r.stderr).trim().split('\n').pop()}`, { hint: 'the source ended early or is damaged' }));
  });
  child.stdin!.on('error', () => {}); // the exit status tells what went wrong
  const duplex = Duplex.from({ writable: child.stdin!, readable: out });
  duplex.on('close', () => child.kill());
  return duplex;
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
  const child = execa(tool[0], tool.slice(1), { input: head, encoding: 'buffer', buffer: false, reject: false });
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const chunk of child.stdout!) {
    chunks.push(chunk as Buffer);
    have += (chunk as Buffer).length;
    if (have >= n) break;
  }
  child.kill();
  await child;
  return Buffer.concat(chunks).subarray(0, n);
}
