import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractGuard } from '../../src/rootfs/extract-guard.js';
import { detectCompression, detectContent, parseQcow2Header } from '../../src/source/magic.js';
import { firstZstdFrame, zstdContentSize, zstdHeadFrame } from '../../src/source/zstd-frames.js';
import { zstdHeadFrameCompressor } from '../../src/stream/zstd-head-frame.js';
import { DiskWriter } from '../../src/stream/disk-writer.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-unit-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const KiB = 1024;
const MiB = 1024 * KiB;

describe('DiskWriter', () => {
  it('writes zeros over old data where the target does not read back zeros, and holds the head until commit', async () => {
    const file = path.join(dir, 'old.img');
    await writeFile(file, Buffer.alloc(4 * MiB, 0xaa));
    const image = Buffer.alloc(3 * MiB);
    image.fill(0x11, 0, 512);
    image.fill(0x22, 2 * MiB, 2 * MiB + 100);
    const writer = new DiskWriter(file, { flags: 'r+', holdHead: MiB, zeroFrom: Infinity });
    await pipeline(Readable.from([image.subarray(0, 700 * KiB), image.subarray(700 * KiB)]), writer);
    let now = await readFile(file);
    expect(now.subarray(0, MiB).every((b) => b === 0xaa)).toBe(true); // head not yet written
    expect(now.subarray(MiB, 3 * MiB).equals(image.subarray(MiB))).toBe(true); // zeros written over 0xaa
    expect(now.subarray(3 * MiB).every((b) => b === 0xaa)).toBe(true); // past the image: untouched
    await writer.commitHead();
    now = await readFile(file);
    expect(now.subarray(0, 3 * MiB).equals(image)).toBe(true);
  });

  it('skips zero blocks from zeroFrom on, leaving holes in a fresh file', async () => {
    const file = path.join(dir, 'sparse.img');
    await writeFile(file, '');
    const image = Buffer.alloc(64 * MiB);
    image.fill(7, 10 * MiB, 11 * MiB);
    await pipeline(Readable.from([image]), new DiskWriter(file, { flags: 'r+', zeroFrom: 0, truncate: true }));
    const st = await stat(file);
    expect(st.size).toBe(64 * MiB);
    expect(st.blocks * 512).toBeLessThanOrEqual(2 * MiB);
    expect((await readFile(file)).equals(image)).toBe(true);
  });

  it('writes any chunking at an unaligned offset as one image, skipping only whole zero blocks of the target past zeroFrom', async () => {
    // 64 KiB blocks of the target, some with data, one with a single byte set near its end
    const image = Buffer.alloc(40 * 64 * KiB);
    for (const b of [0, 3, 4, 17, 30]) image.fill(b + 1, b * 64 * KiB + 1000, b * 64 * KiB + 50_000);
    image[22 * 64 * KiB - 1] = 9;
    const offset = 64 * KiB - 4096; // so the stream's blocks straddle the target's
    for (const sizes of [[image.length], [1, 4095, 70_000, 3 * 64 * KiB + 7], [64 * KiB - 1, 64 * KiB + 1, 13]]) {
      const chunks: Buffer[] = [];
      for (let at = 0, i = 0; at < image.length; i++) {
        const n = Math.min(sizes[i % sizes.length], image.length - at);
        chunks.push(image.subarray(at, at + n));
        at += n;
      }
      const file = path.join(dir, `chunked-${sizes.length}.img`);
      await writeFile(file, Buffer.alloc(offset + image.length, 0xee));
      // zeros are written below 1 MiB of the target and skipped above it, where 0xee shows through
      const writer = new DiskWriter(file, { flags: 'r+', offset, zeroFrom: MiB });
      await pipeline(Readable.from(chunks), writer);
      const now = await readFile(file);
      expect(now.subarray(0, offset).every((b) => b === 0xee)).toBe(true);
      for (let block = 0; block * 64 * KiB < offset + image.length; block++) {
        const [from, to] = [
          Math.max(offset, block * 64 * KiB),
          Math.min(offset + image.length, (block + 1) * 64 * KiB),
        ];
        if (to <= from) continue;
        const want = image.subarray(from - offset, to - offset);
        const got = now.subarray(from, to);
        const skipped = from >= MiB && want.every((b) => b === 0);
        expect(skipped ? got.every((b) => b === 0xee) : got.equals(want), `target block ${block}`).toBe(true);
      }
      expect(writer.length).toBe(image.length);
    }
  });

  it('fails instead of writing past the target', async () => {
    const file = path.join(dir, 'small.img');
    await writeFile(file, Buffer.alloc(MiB));
    await expect(
      pipeline(Readable.from([Buffer.alloc(2 * MiB, 1)]), new DiskWriter(file, { flags: 'r+', limit: MiB })),
    ).rejects.toThrow(/larger than the target/);
  });
});

describe('extractGuard', () => {
  const entry = (name: string, type = '0', linkname?: string) => ({ name, type, size: 0, mode: 0o644, linkname });
  it('keeps ordinary entries and absolute symlinks, refuses .., hardlinks out, and paths through symlinks', () => {
    const decide = extractGuard();
    expect(decide(entry('etc/'))).toEqual({ action: 'keep' });
    expect(decide(entry('etc/alternatives/editor', '2', '/usr/bin/vim'))).toEqual({ action: 'keep' });
    expect(() => decide(entry('../x'))).toThrow(/climbs out/);
    expect(() => decide(entry('a/../../x'))).toThrow(/climbs out/);
    expect(() => decide(entry('h', '1', '../../etc/shadow'))).toThrow(/hardlink/);
    decide(entry('lnk', '2', '/etc'));
    expect(() => decide(entry('lnk/passwd'))).toThrow(/through the symlink "lnk"/);
  });
});

describe('source magic', () => {
  it('tells compression and content from bytes', () => {
    expect(detectCompression(Buffer.from([0x1f, 0x8b, 8]))).toBe('gz');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zst');
    expect(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toBe('xz');
    const mbr = Buffer.alloc(1024);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    expect(detectContent(mbr)).toBe('disk');
    const tar = Buffer.alloc(512);
    tar.write('ustar', 257, 'latin1');
    expect(detectContent(tar)).toBe('tar');
    expect(detectContent(Buffer.from('{"manifest_version": 1}'))).toBe('manifest');
    expect(detectContent(Buffer.alloc(4096))).toBe('unknown');
  });

  it('reads the qcow2 fields that decide refusal, and the zstd content size', () => {
    const h = Buffer.alloc(104);
    h.write('QFI\xfb', 0, 'latin1');
    h.writeUInt32BE(3, 4);
    h.writeBigUInt64BE(512n, 8);
    h.writeBigUInt64BE(2n ** 30n, 24);
    h.writeBigUInt64BE(4n, 72);
    expect(parseQcow2Header(h)).toMatchObject({
      version: 3,
      virtualSize: 2 ** 30,
      backingFile: true,
      externalDataFile: true,
      dirty: false,
    });
    // frame header: single segment, 4-byte content size
    const z = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(zstdContentSize(z)).toBe(64 * MiB);
  });

  it('finds the head frame that the raw.zst exporter writes, and only there', async () => {
    const disk = Buffer.alloc(3 * MiB);
    disk.write('EFI PART', 512, 'latin1');
    disk.fill(7, 2 * MiB, 2 * MiB + 4096);
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([disk.subarray(0, 300_000), disk.subarray(300_000)]),
      zstdHeadFrameCompressor({ headBytes: MiB, totalBytes: disk.length }),
      async function* (src) {
        for await (const c of src) chunks.push(c as Buffer);
      },
    );
    const file = Buffer.concat(chunks);
    const frame = firstZstdFrame(file)!;
    expect(zstdHeadFrame(file)).toEqual(frame);
    expect(frame.contentSize).toBe(MiB);
    expect(zstdContentSize(file.subarray(frame.length))).toBe(2 * MiB); // --stream-size of the rest
    const whole = await execa('zstd', ['-dc'], { input: file, encoding: 'buffer' });
    expect(Buffer.compare(Buffer.from(whole.stdout), disk)).toBe(0);
    // one frame, a cut frame, or not zstd at all: no head frame
    const single = Buffer.from((await execa('zstd', ['-c'], { input: disk, encoding: 'buffer' })).stdout);
    expect(firstZstdFrame(single)?.length).toBe(single.length);
    expect(zstdHeadFrame(single)).toBeUndefined();
    expect(firstZstdFrame(file.subarray(0, frame.length - 1))).toBeUndefined();
    expect(zstdHeadFrame(disk)).toBeUndefined();
  });
});
