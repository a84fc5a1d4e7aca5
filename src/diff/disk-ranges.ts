import { open } from 'node:fs/promises';

/** A run of bytes that differ between two disk images (block granularity). */
export interface ByteRange {
  start: number;
  end: number;
}

const CHUNK = 4 * 1024 * 1024;

/**
 * Byte ranges where two raw images differ, in `block`-sized units, merged when adjacent; a size
 * difference counts as a range at the end. Reads both files in lockstep, so memory stays at two chunks.
 */
export async function differingRanges(
  fileA: string,
  fileB: string,
  block = 4096,
): Promise<{ ranges: ByteRange[]; sizeA: number; sizeB: number }> {
  const [a, b] = await Promise.all([open(fileA, 'r'), open(fileB, 'r')]);
  try {
    const [sizeA, sizeB] = (await Promise.all([a.stat(), b.stat()])).map((s) => s.size);
    const common = Math.min(sizeA, sizeB);
    const bufA = Buffer.alloc(CHUNK);
    const bufB = Buffer.alloc(CHUNK);
    const ranges: ByteRange[] = [];
    const add = (start: number, end: number) => {
      const last = ranges.at(-1);
      if (last && last.end === start) last.end = end;
      else ranges.push({ start, end });
    };
    for (let pos = 0; pos < common; pos += CHUNK) {
      const n = Math.min(CHUNK, common - pos);
      await Promise.all([a.read(bufA, 0, n, pos), b.read(bufB, 0, n, pos)]);
      if (bufA.subarray(0, n).equals(bufB.subarray(0, n))) continue;
      for (let off = 0; off < n; off += block) {
        const m = Math.min(block, n - off);
        if (!bufA.subarray(off, off + m).equals(bufB.subarray(off, off + m))) add(pos + off, pos + off + m);
      }
    }
    if (sizeA !== sizeB) add(common, Math.max(sizeA, sizeB));
    return { ranges, sizeA, sizeB };
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}
