import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Progress } from '../core/progress.js';

const CHUNK = 4 * 1024 * 1024;

/**
 * The sha256 of an open file, read by position (the descriptor's offset is left to whoever else reads
 * it) into two reused buffers: one is hashed while the next is read, and nothing is allocated per
 * chunk.
 */
export async function hashOpenFile(
  fh: FileHandle,
  opts: { progress?: Progress; signal?: AbortSignal } = {},
): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  let size = 0;
  let pending = fh.read(buffers[0], 0, CHUNK, 0);
  for (let i = 0; ; i++) {
    const { bytesRead } = await pending;
    if (bytesRead === 0) break;
    opts.signal?.throwIfAborted();
    const buf = buffers[i % 2];
    pending = fh.read(buffers[(i + 1) % 2], 0, CHUNK, size + bytesRead);
    hash.update(buf.subarray(0, bytesRead));
    size += bytesRead;
    opts.progress?.add(bytesRead);
  }
  return { sha256: hash.digest('hex'), size };
}
