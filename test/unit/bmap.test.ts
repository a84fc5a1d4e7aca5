import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BmapMapper, bmapCandidates, formatBmap, mappedBytes, parseBmap, rangeBytes } from '../../src/stream/bmap.js';

const KiB = 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The bmap BmapMapper makes of `image`, fed in chunks of `chunk` bytes. */
async function mapOf(image: Buffer, chunk: number): Promise<string> {
  const mapper = new BmapMapper();
  const pieces: Buffer[] = [];
  for (let at = 0; at < image.length; at += chunk) pieces.push(image.subarray(at, at + chunk));
  await pipeline(Readable.from(pieces), mapper, new Writable({ write: (_c, _e, done) => done() }));
  return mapper.bmap();
}

describe('bmap', () => {
  // data in the first 64 KiB block, in two adjacent blocks further on, and a last partial block
  const image = Buffer.alloc(1024 * KiB + 8 * KiB);
  image[5] = 1;
  image.fill(7, 300 * KiB, 380 * KiB);
  image[image.length - 1] = 9;

  it('maps the non-zero 64 KiB blocks of an image into 4 KiB-block ranges with their sha256, and reads that back', async () => {
    for (const chunk of [1000, 64 * KiB, 1 << 20]) {
      const text = await mapOf(image, chunk);
      const map = parseBmap(Buffer.from(text), 'test.bmap');
      expect(map).toMatchObject({ version: '2.0', imageSize: image.length, blockSize: 4096, blocksCount: 258 });
      // 64 KiB blocks 0, 4-5 (256 KiB-384 KiB), and the partial one from 1 MiB
      expect(map.ranges.map((r) => [r.first, r.last])).toEqual([
        [0, 15],
        [64, 95],
        [256, 257],
      ]);
      expect(map.mappedBlocks).toBe(50);
      for (const r of map.ranges) {
        const { start, end } = rangeBytes(map, r);
        expect(r.sha256).toBe(sha(image.subarray(start, end)));
      }
      expect(mappedBytes(map)).toBe(48 * 4 * KiB + 8 * KiB);
    }
  });

  it("checks the file's own checksum (BmapFileChecksum, computed over the file with it as zeros)", async () => {
    const text = await mapOf(image, 64 * KiB);
    const sum = /<BmapFileChecksum> ([0-9a-f]{64}) </.exec(text)![1];
    const zeroed = text.replace(sum, '0'.repeat(64));
    expect(sha(Buffer.from(zeroed))).toBe(sum);
    const changed = text.replace('<Range chksum', '<Range  chksum');
    expect(() => parseBmap(Buffer.from(changed), 'x.bmap')).toThrow(
      /x\.bmap: the file's checksum is [0-9a-f]{64}, but/,
    );
  });

  /** A map with these ranges, its checksums made right. */
  const withRanges = (body: string, mapped: number, size = 40960) =>
    Buffer.from(
      formatBmap({ imageSize: size, blockSize: 4096, ranges: [] })
        .replace('<BlockMap>\n', `<BlockMap>\n${body}`)
        .replace(/<MappedBlocksCount> \d+ /, `<MappedBlocksCount> ${mapped} `)
        .replace(/<BmapFileChecksum> [0-9a-f]{64} /, `<BmapFileChecksum> ${'0'.repeat(64)} `),
    );
  const resign = (b: Buffer) => Buffer.from(b.toString().replace('0'.repeat(64), sha(b)));

  it('refuses ranges that overlap, descend or pass the image end, and a wrong MappedBlocksCount', () => {
    expect(() => parseBmap(resign(withRanges('<Range> 2-4 </Range><Range> 4 </Range>', 4)), 'm')).toThrow(
      /range 4 overlaps or precedes/,
    );
    expect(() => parseBmap(resign(withRanges('<Range> 5 </Range><Range> 1-2 </Range>', 3)), 'm')).toThrow(
      /range 1-2 overlaps or precedes/,
    );
    expect(() => parseBmap(resign(withRanges('<Range> 8-10 </Range>', 3)), 'm')).toThrow(
      /range 8-10 goes past the image's last block \(9\)/,
    );
    expect(() => parseBmap(resign(withRanges('<Range> 1 </Range>', 2)), 'm')).toThrow(
      /MappedBlocksCount is 2, but the ranges map 1/,
    );
    expect(() => parseBmap(resign(withRanges('<Range>1</Range><Oops/>', 1)), 'm')).toThrow(/unreadable at "<Oops/);
    const ok = parseBmap(
      resign(withRanges(`<Range>1</Range>\n<Range chksum="${'a'.repeat(64)}"> 3 - 9 </Range>`, 8)),
      'm',
    );
    expect(ok.ranges).toEqual([
      { first: 1, last: 1, sha256: undefined },
      { first: 3, last: 9, sha256: 'a'.repeat(64) },
    ]);
  });

  it('refuses other versions, checksum types and files that are not bmaps', () => {
    const text = formatBmap({ imageSize: 4096, blockSize: 4096, ranges: [] });
    expect(() => parseBmap(Buffer.from('<html></html>'), 'm')).toThrow(/not a bmap file/);
    expect(() => parseBmap(Buffer.from(text.replace('version="2.0"', 'version="1.3"')), 'm')).toThrow(
      /bmap format 1\.3/,
    );
    expect(() => parseBmap(Buffer.from(text.replace('> sha256 <', '> md5 <')), 'm')).toThrow(/ChecksumType md5/);
  });

  it('is looked for where bmaptool looks: the image name plus .bmap, then without each extension', () => {
    expect(bmapCandidates('/out/debian.raw')).toEqual(['/out/debian.raw.bmap', '/out/debian.bmap']);
    expect(bmapCandidates('/a.b/disk')).toEqual(['/a.b/disk.bmap']);
  });
});
