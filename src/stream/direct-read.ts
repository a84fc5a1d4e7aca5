import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** What O_DIRECT asks of a read's memory address, file position and length: 4096 covers 512-byte and 4Kn disks. */
export const DIRECT_ALIGN = 4096;

/** A file open for positioned reads into its own reusable buffers over shared memory. */
export interface DirectReader {
  fh: FileHandle;
  /** True when reads bypass the page cache (O_DIRECT). */
  direct: boolean;
  buffers: Buffer[];
  /** How many bytes to ask for to get the next `n` of the file (a direct read asks for whole blocks). */
  readLength(n: number): number;
}

/**
 * Opens `file` for reads that bypass the page cache when its filesystem allows them (squashfs does not),
 * with `count` buffers of `bytes` over shared memory (a worker thread can read them in place). A direct
 * read lands in the buffer by DMA, which saves copying every byte out of the page cache: on the
 * machines measured that copy cost as much CPU as the sha256. Falls back to the page cache when no
 * aligned buffer can be had.
 */
export async function openDirect(file: string, count: number, bytes: number): Promise<DirectReader> {
  if (bytes % DIRECT_ALIGN)
    throw new RangeError(`openDirect: buffers of ${bytes} bytes are not whole ${DIRECT_ALIGN}-byte blocks`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_DIRECT);
    const buffers: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const buf = await alignedBuffer(fh, bytes);
      if (!buf) break;
      buffers.push(buf);
    }
    if (buffers.length === count)
      return { fh, direct: true, buffers, readLength: (n) => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') {
      await fh?.close();
      throw err;
    }
  }
  await fh?.close();
  const buffers = Array.from({ length: count }, () => Buffer.from(new SharedArrayBuffer(bytes)));
  return { fh: await open(file, 'r'), direct: false, buffers, readLength: (n) => n };
}

/**
 * A view of `bytes` of shared memory whose address suits O_DIRECT. JavaScript cannot see an address,
 * so the aligned start is found by trying a direct read of one block at each candidate offset (malloc
 * aligns to 16 bytes; a large block usually starts 16 bytes into a page, so that offset goes first).
 */
async function alignedBuffer(fh: FileHandle, bytes: number): Promise<Buffer | undefined> {
  const raw = Buffer.from(new SharedArrayBuffer(bytes + DIRECT_ALIGN));
  const candidates = [DIRECT_ALIGN - 16, 0];
  for (let off = 16; off < DIRECT_ALIGN - 16; off += 16) candidates.push(off);
  for (const off of candidates) {
    try {
      await fh.read(raw, off, DIRECT_ALIGN, 0);
      return raw.subarray(off, off + bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }
  return undefined;
}
