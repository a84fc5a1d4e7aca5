import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIRECT_ALIGN, openDirect } from '../../src/stream/direct-read.js';
import { Sha256Worker, sha256Hasher } from '../../src/stream/sha256-worker.js';

const MiB = 2 ** 20;
/** ext4, xfs, btrfs: filesystems that take O_DIRECT reads. */
const DIRECT_FS = [0xef53, 0x58465342, 0x9123683e];

/** Feeds `data` to `hasher` in chunks of varying size through one reused shared buffer. */
async function hashThroughOneBuffer(
  hasher: { update(b: Buffer): Promise<void>; digest(): Promise<string> },
  data: Buffer,
): Promise<string> {
  const buf = Sha256Worker.buffer(MiB);
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min([MiB, 1, 4097, 300_000][i % 4], data.length - at);
    data.copy(buf, 0, at, at + n);
    await hasher.update(buf.subarray(0, n)); // the buffer is overwritten as soon as this resolves
    at += n;
  }
  return hasher.digest();
}

describe('sha256 of reused buffers, on the event loop or a worker thread', () => {
  const data = randomBytes(5 * MiB + 123);
  const expected = createHash('sha256').update(data).digest('hex');

  it('a worker thread gives the digest of the bytes as they were when handed over', async () => {
    const worker = new Sha256Worker();
    try {
      expect(await hashThroughOneBuffer(worker, data)).toBe(expected);
    } finally {
      await worker.close();
    }
  });

  it('a small stream is hashed on the event loop, to the same digest', async () => {
    const inline = sha256Hasher(data.length);
    expect(inline).not.toBeInstanceOf(Sha256Worker);
    expect(await hashThroughOneBuffer(inline, data)).toBe(expected);
    const large = sha256Hasher(1024 * MiB);
    expect(large).toBeInstanceOf(Sha256Worker);
    await large.close();
  });

  it('refuses memory the worker cannot share, and fails what comes after close()', async () => {
    const worker = new Sha256Worker();
    await expect(worker.update(Buffer.alloc(16))).rejects.toThrow(/SharedArrayBuffer/);
    await worker.close();
    await expect(worker.update(Sha256Worker.buffer(16))).rejects.toThrow(/worker thread has ended/);
    await expect(worker.digest()).rejects.toThrow(/worker thread has ended/);
  });
});

describe('reads past the page cache', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bareon-direct-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Reads `file` back chunk by chunk as the qcow2 writer does; returns what was read and whether it was direct. */
  async function readBack(file: string, size: number): Promise<{ bytes: Buffer; direct: boolean }> {
    const reader = await openDirect(file, 2, MiB);
    try {
      const parts: Buffer[] = [];
      for (let pos = 0, i = 0; pos < size; pos += MiB, i++) {
        const n = Math.min(MiB, size - pos);
        const buf = reader.buffers[i % 2];
        expect(buf.buffer).toBeInstanceOf(SharedArrayBuffer);
        const { bytesRead } = await reader.fh.read(buf, 0, reader.readLength(n), pos);
        expect(bytesRead).toBe(n);
        parts.push(Buffer.from(buf.subarray(0, n)));
      }
      return { bytes: Buffer.concat(parts), direct: reader.direct };
    } finally {
      await reader.fh.close();
    }
  }

  it('reads a file whose size is no whole number of blocks, byte for byte, bypassing the cache where the filesystem allows', async () => {
    const size = 3 * MiB + 1000;
    const data = randomBytes(size);
    const file = path.join(dir, 'odd.bin');
    await writeFile(file, data);
    const got = await readBack(file, size);
    expect(got.bytes.equals(data)).toBe(true);
    const type = Number((await statfs(dir)).type);
    if (DIRECT_FS.includes(type)) expect(got.direct, `O_DIRECT on filesystem type 0x${type.toString(16)}`).toBe(true);
  });

  it('asks only for buffers of whole blocks', async () => {
    await expect(openDirect(path.join(dir, 'odd.bin'), 1, DIRECT_ALIGN + 512)).rejects.toThrow(
      /not whole 4096-byte blocks/,
    );
  });
});
