import { spawn } from 'node:child_process';
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
  const child = spawn(tool[0], tool.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], signal });
  const out = new PassThrough({ highWaterMark: 4 * 1024 * 1024 });
  child.stdout.pipe(out, { end: false });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4096)));
  // 'close' comes after stdout has ended, so `out` has every byte before it ends
  child.on('close', (code) => {
    if (signal?.aborted) return out.destroy(signal.reason as Error);
    if (code === 0) return out.end();
    out.destroy(new BareonError(`${tool[0]}: the ${kind} stream is corrupt or truncated: ${stderr.trim().split('\n').pop()}`, { hint: 'the source ended early or is damaged' }));
  });
  child.on('error', (err) => out.destroy(signal?.aborted ? (signal.reason as Error) : new BareonError(`${tool[0]}: ${err.message}`, { hint: `install ${tool[0]}` })));
  child.stdin.on('error', () => {}); // the exit status tells what went wrong
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
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
