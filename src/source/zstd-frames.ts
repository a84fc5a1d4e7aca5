const ZSTD_MAGIC = 0xfd2fb528;

/** The first zstd frame of a buffer: its length in bytes and the size it declares it decompresses to. */
export interface ZstdFrame {
  length: number;
  contentSize?: number;
}

/** The decompressed size a zstd frame header declares (the zstd tool writes it when compressing a file), if any. */
export function zstdContentSize(head: Buffer): number | undefined {
  return frameHeader(head)?.contentSize;
}

function frameHeader(buf: Buffer): { headerLength: number; contentSize?: number; checksum: boolean } | undefined {
  if (buf.length < 6 || buf.readUInt32LE(0) !== ZSTD_MAGIC) return undefined;
  const descriptor = buf[4];
  const singleSegment = (descriptor >> 5) & 1;
  const checksum = ((descriptor >> 2) & 1) === 1;
  const didSize = [0, 1, 2, 4][descriptor & 3];
  const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6];
  const at = 5 + (singleSegment ? 0 : 1) + didSize;
  const headerLength = at + fcsSize;
  if (buf.length < headerLength) return undefined;
  let contentSize: number | undefined;
  if (fcsSize === 1) contentSize = buf[at];
  else if (fcsSize === 2) contentSize = buf.readUInt16LE(at) + 256;
  else if (fcsSize === 4) contentSize = buf.readUInt32LE(at);
  else if (fcsSize === 8) contentSize = Number(buf.readBigUInt64LE(at));
  return { headerLength, contentSize, checksum };
}

/**
 * Walks the blocks of the zstd frame at the start of `buf` (RFC 8878 §3.1.1) without decoding them.
 * Undefined when `buf` does not start with a frame or ends before the frame does.
 */
export function firstZstdFrame(buf: Buffer): ZstdFrame | undefined {
  const header = frameHeader(buf);
  if (!header) return undefined;
  let at = header.headerLength;
  for (;;) {
    if (at + 3 > buf.length) return undefined;
    const block = buf.readUIntLE(at, 3);
    const last = block & 1;
    const type = (block >> 1) & 3;
    if (type === 3) return undefined; // reserved: not a valid frame
    at += 3 + (type === 1 ? 1 : block >>> 3);
    if (last) break;
  }
  if (header.checksum) at += 4;
  return at <= buf.length ? { length: at, contentSize: header.contentSize } : undefined;
}

/** The most a head frame may expand to: it is kept in memory until the rest is written and verified. */
export const HEAD_FRAME_MAX = 4 * 1024 * 1024;

/**
 * A "head frame": a small first frame that decompresses to the start of a disk image, followed by
 * more frames with the rest. bareon-build writes raw.zst this way, so that bareon-deploy can keep the
 * boot sectors in memory and let zstd write the rest straight onto the target. Any zstd reads the
 * file as one stream. Returns the first frame when `head` holds all of it and another frame follows.
 */
export function zstdHeadFrame(head: Buffer): ZstdFrame | undefined {
  const frame = firstZstdFrame(head);
  if (!frame || (frame.contentSize !== undefined && (frame.contentSize === 0 || frame.contentSize > HEAD_FRAME_MAX)))
    return undefined;
  return head.length >= frame.length + 4 && head.readUInt32LE(frame.length) === ZSTD_MAGIC ? frame : undefined;
}
