import { createHash, type Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import { SPARSE_BLOCK } from './disk-writer.js';

/**
 * Block maps as bmaptool reads and writes them (bmap format 2.0): an image's size, its block size
 * and the ranges of blocks that hold data, each with the sha256 of its bytes. Blocks outside every
 * range read as zeros in the image; a copy may leave them out.
 */
export interface Bmap {
  /** Format version as the file gives it ("2.0"). */
  version: string;
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocks: number;
  /** Mapped ranges in ascending order, none overlapping; `last` is inclusive. */
  ranges: BmapRange[];
}

export interface BmapRange {
  first: number;
  last: number;
  /** sha256 of the range's bytes (the last block only up to the image's end); absent when the file gives none. */
  sha256?: string;
}

/** bareon's block size in the maps it writes: bmaptool's. */
export const BMAP_BLOCK = 4096;

/** A bmap file that bareon cannot read or that contradicts itself. */
export class BmapFormatError extends Error {}

/** Byte range [start, end) of a mapped range in the image. */
export function rangeBytes(bmap: Bmap, r: BmapRange): { start: number; end: number } {
  return { start: r.first * bmap.blockSize, end: Math.min((r.last + 1) * bmap.blockSize, bmap.imageSize) };
}

/** Bytes the map's ranges cover. */
export function mappedBytes(bmap: Bmap): number {
  return bmap.ranges.reduce((n, r) => {
    const { start, end } = rangeBytes(bmap, r);
    return n + end - start;
  }, 0);
}

const CHECKSUM_FIELD = /<BmapFileChecksum>\s*([0-9a-fA-F]*)\s*<\/BmapFileChecksum>/;

/** sha256 of a bmap file with its own checksum's first occurrence replaced by as many "0" (as bmaptool computes it). */
export function bmapFileChecksum(data: Buffer, stored: string): string {
  const copy = Buffer.from(data);
  const at = stored ? copy.indexOf(stored, 0, 'latin1') : -1;
  if (at >= 0) copy.fill('0'.charCodeAt(0), at, at + stored.length);
  return createHash('sha256').update(copy).digest('hex');
}

/** The map as bmap XML (version 2.0), with its BmapFileChecksum filled in. */
export function formatBmap(map: Omit<Bmap, 'version' | 'blocksCount' | 'mappedBlocks'>): string {
  const blocksCount = Math.ceil(map.imageSize / map.blockSize);
  const mapped = map.ranges.reduce((n, r) => n + r.last - r.first + 1, 0);
  const percent = blocksCount ? ((mapped * 100) / blocksCount).toFixed(1) : '0.0';
  const ranges = map.ranges.map((r) => {
    const span = r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
    return `        <Range${r.sha256 ? ` chksum="${r.sha256}"` : ''}> ${span} </Range>\n`;
  });
  const text = [
    '<?xml version="1.0" ?>\n',
    '<!-- Block map written by bareon-build beside its raw disk image. The ranges list the blocks\n',
    '     that hold data, each with the sha256 of its bytes; every other block reads as zeros in\n',
    '     the image. bmaptool copy and bareon-deploy write only the listed blocks. -->\n',
    '<bmap version="2.0">\n',
    `    <ImageSize> ${map.imageSize} </ImageSize>\n`,
    `    <BlockSize> ${map.blockSize} </BlockSize>\n`,
    `    <BlocksCount> ${blocksCount} </BlocksCount>\n`,
    `    <!-- ${percent}% of the blocks are mapped -->\n`,
    `    <MappedBlocksCount> ${mapped} </MappedBlocksCount>\n`,
    '    <ChecksumType> sha256 </ChecksumType>\n',
    '    <!-- sha256 of this file with the value below replaced by 64 "0" -->\n',
    `    <BmapFileChecksum> ${'0'.repeat(64)} </BmapFileChecksum>\n`,
    '    <BlockMap>\n',
    ...ranges,
    '    </BlockMap>\n',
    '</bmap>\n',
  ].join('');
  const sum = bmapFileChecksum(Buffer.from(text, 'latin1'), '');
  return text.replace('0'.repeat(64), sum);
}

/** The text of the one `<tag>` element, or an error. */
function element(text: string, tag: string, label: string, nested = false): string {
  const all = [...text.matchAll(new RegExp(`<${tag}>(${nested ? '[\\s\\S]*?' : '[^<]*'})</${tag}>`, 'g'))];
  if (all.length !== 1)
    throw new BmapFormatError(`${label}: ${all.length ? `${tag} appears ${all.length} times` : `no ${tag}`}`);
  return all[0][1].trim();
}

function count(text: string, tag: string, label: string, min: number): number {
  const value = element(text, tag, label);
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new BmapFormatError(`${label}: ${tag} "${value.slice(0, 40)}" is not a whole number of at least ${min}`);
  return n;
}

/**
 * Reads a bmap file (format 1.4 or 2.x, sha256 checksums), checking its own checksum and that its
 * ranges are ascending, disjoint and inside the image. `label` names the file in errors.
 */
export function parseBmap(data: Buffer, label: string): Bmap {
  const text = data.toString('latin1').replace(/<!--[\s\S]*?-->/g, '');
  const root = /<bmap\s+version\s*=\s*"(\d+)\.(\d+)"\s*>([\s\S]*)<\/bmap>\s*$/.exec(text);
  if (!root) throw new BmapFormatError(`${label}: not a bmap file (no <bmap version="…"> element)`);
  const [major, minor] = [Number(root[1]), Number(root[2])];
  if (!(major === 2 || (major === 1 && minor === 4)))
    throw new BmapFormatError(
      `${label}: bmap format ${major}.${minor}; bareon reads 2.x (and 1.4, its old name), with sha256 checksums`,
    );
  const body = root[3];
  const checksumType = element(body, 'ChecksumType', label);
  if (checksumType !== 'sha256')
    throw new BmapFormatError(`${label}: ChecksumType ${checksumType.slice(0, 40)}; bareon checks sha256 only`);
  element(body, 'BmapFileChecksum', label);
  const value = CHECKSUM_FIELD.exec(body)?.[1] ?? '';
  const stored = value.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(stored))
    throw new BmapFormatError(`${label}: BmapFileChecksum is not a sha256 (64 hex digits)`);
  const own = bmapFileChecksum(data, value);
  if (own !== stored)
    throw new BmapFormatError(`${label}: the file's checksum is ${own}, but its BmapFileChecksum says ${stored}`);
  const imageSize = count(body, 'ImageSize', label, 0);
  const blockSize = count(body, 'BlockSize', label, 1);
  const blocksCount = count(body, 'BlocksCount', label, 0);
  const mappedBlocks = count(body, 'MappedBlocksCount', label, 0);
  if (imageSize > 2 ** 53 - 1 || blockSize > 2 ** 30)
    throw new BmapFormatError(`${label}: ImageSize or BlockSize out of range`);
  if (blocksCount !== Math.ceil(imageSize / blockSize))
    throw new BmapFormatError(
      `${label}: BlocksCount ${blocksCount} does not match ImageSize ${imageSize} in blocks of ${blockSize} bytes`,
    );
  const blockMap = element(body, 'BlockMap', label, true);
  const ranges: BmapRange[] = [];
  const RANGE = /<Range(?:\s+chksum\s*=\s*"([^"]*)")?\s*>\s*(\d+)\s*(?:-\s*(\d+)\s*)?<\/Range>/y;
  let at = 0;
  let next = 0;
  let mapped = 0;
  for (;;) {
    while (at < blockMap.length && /\s/.test(blockMap[at])) at++;
    if (at >= blockMap.length) break;
    RANGE.lastIndex = at;
    const m = RANGE.exec(blockMap);
    if (!m) throw new BmapFormatError(`${label}: BlockMap: unreadable at "${blockMap.slice(at, at + 60)}"`);
    at = RANGE.lastIndex;
    const first = Number(m[2]);
    const last = m[3] === undefined ? first : Number(m[3]);
    const span = `range ${m[2]}${m[3] === undefined ? '' : `-${m[3]}`}`;
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first)
      throw new BmapFormatError(`${label}: ${span} is not a range of blocks`);
    if (first < next)
      throw new BmapFormatError(`${label}: ${span} overlaps or precedes the range before it; ranges must ascend`);
    if (last >= blocksCount)
      throw new BmapFormatError(`${label}: ${span} goes past the image's last block (${blocksCount - 1})`);
    const sha256 = m[1]?.toLowerCase();
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256))
      throw new BmapFormatError(`${label}: ${span}: chksum is not a sha256 (64 hex digits)`);
    ranges.push({ first, last, sha256 });
    mapped += last - first + 1;
    next = last + 1;
  }
  if (mapped !== mappedBlocks)
    throw new BmapFormatError(`${label}: MappedBlocksCount is ${mappedBlocks}, but the ranges map ${mapped} blocks`);
  return { version: `${major}.${minor}`, imageSize, blockSize, blocksCount, mappedBlocks, ranges };
}

/** Where bmaptool looks for an image's map: `<image>.bmap`, then with each extension taken off (`disk.raw` → `disk.bmap`). */
export function bmapCandidates(image: string): string[] {
  const found: string[] = [];
  let name = image;
  for (;;) {
    found.push(`${name}.bmap`);
    const m = /^(.*[^/])\.[^./]+$/.exec(name);
    if (!m) return found;
    name = m[1];
  }
}

const ZEROS = Buffer.alloc(SPARSE_BLOCK);

/**
 * Maps an image as it streams past: the data runs between all-zero 64 KiB blocks (aligned to the
 * image's start, whatever the chunks). A SparseFileWriter leaves those blocks as holes in the file
 * it writes (and zero parts of blocks split between its writes too), so the map covers what
 * `bmaptool create` finds in that file with SEEK_DATA/SEEK_HOLE. Each range's sha256 is computed on
 * the way. Read `bmap()` after the stream ended.
 */
export class BmapMapper extends Transform {
  private position = 0;
  private pieces: Buffer[] = [];
  private blockStart = 0;
  private open: { start: number; hash: Hash } | undefined;
  private readonly ranges: BmapRange[] = [];

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err: null, chunk: Buffer) => void): void {
    for (let off = 0; off < chunk.length; ) {
      const n = Math.min(SPARSE_BLOCK - (this.position % SPARSE_BLOCK), chunk.length - off);
      this.pieces.push(chunk.subarray(off, off + n));
      off += n;
      this.position += n;
      if (this.position % SPARSE_BLOCK === 0) this.endBlock();
    }
    done(null, chunk);
  }

  override _flush(done: () => void): void {
    if (this.pieces.length) this.endBlock();
    this.closeRange(this.position);
    done();
  }

  private endBlock(): void {
    const zero = this.pieces.every((p) => p.equals(ZEROS.subarray(0, p.length)));
    if (zero) this.closeRange(this.blockStart);
    else {
      this.open ??= { start: this.blockStart, hash: createHash('sha256') };
      for (const p of this.pieces) this.open.hash.update(p);
    }
    this.pieces = [];
    this.blockStart = this.position;
  }

  private closeRange(end: number): void {
    if (!this.open) return;
    this.ranges.push({
      first: this.open.start / BMAP_BLOCK,
      last: Math.ceil(end / BMAP_BLOCK) - 1,
      sha256: this.open.hash.digest('hex'),
    });
    this.open = undefined;
  }

  /** The map of what passed, as bmap XML. */
  bmap(): string {
    return formatBmap({ imageSize: this.position, blockSize: BMAP_BLOCK, ranges: this.ranges });
  }
}
