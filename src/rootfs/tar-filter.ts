import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;

/** What the filter knows about an entry when it decides its fate. */
export interface TarEntryInfo {
  /** Path without a leading "./" or "/"; directories end with "/". */
  name: string;
  /** ustar typeflag: "0" file, "1" hardlink, "2" symlink, "3"/"4" devices, "5" directory… */
  type: string;
  size: number;
  mode: number;
  /** Target of a hardlink ("1") or symlink ("2"), as stored. */
  linkname?: string;
}

export type TarDecision =
  | { action: 'keep'; capture?: boolean }
  | { action: 'drop' }
  | { action: 'replace'; content: Buffer; mode: number }
  /** A character device node in place of the entry (what engines leave at /dev/console differs). */
  | { action: 'device'; major: number; minor: number; mode: number };

export interface TarFilterOptions {
  decide(entry: TarEntryInfo): TarDecision;
  /** Entries appended before the end of the archive (for example files the source lacked). */
  append?(): { name: string; content: Buffer; mode: number }[];
  /** Receives the data of entries kept with `capture: true`. */
  onCapture?(entry: TarEntryInfo, data: Buffer): void;
  /**
   * SOURCE_DATE_EPOCH: mtimes later than this are set to it, PAX atime/ctime/mtime records are
   * dropped, and written entries carry it, so the same tree gives the same bytes.
   */
  clampMtime?: number;
}

const zeroBlock = (b: Buffer) => b.every((x) => x === 0);

function readString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function readNumber(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    // base-256 (GNU) for values that do not fit in octal
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i];
    return v;
  }
  const text = readString(b, off, len).trim();
  return text ? parseInt(text, 8) : 0;
}

/** The raw records of a PAX header, values as raw bytes (xattrs are binary). */
function paxRecords(data: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.toString('latin1', pos, space), 10);
    if (!len) break;
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) records.set(record.toString('utf8', 0, eq), record.subarray(eq + 1));
    pos += len;
  }
  return records;
}

const normalize = (name: string) => name.replace(/^(\.\/|\/)+/, '');
const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

/** Output pieces smaller than this are gathered into chunks of about this size. */
const BATCH_BYTES = 64 * 1024;

/**
 * A streaming tar filter that works on raw blocks: kept entries pass through byte for byte (PAX
 * records such as binary SCHILY.xattr values, hardlinks and device nodes are untouched), dropped
 * entries vanish with their PAX/GNU prefix headers, and replaced entries are re-encoded with
 * tar-stream's header encoder. Memory is bounded by one block plus captured entries.
 */
export class TarFilter extends Transform {
  private pending = Buffer.alloc(0);
  /** Raw bytes of PAX/GNU meta entries preceding the next real header. */
  private meta: Buffer[] = [];
  private metaName: string | undefined;
  private metaSize: number | undefined;
  private metaLink: string | undefined;
  private remaining = 0;
  private pad = 0;
  private current: { info: TarEntryInfo; decision: TarDecision; metaKind?: 'pax' | 'gnuname'; metaData?: Buffer[] } | undefined;
  private captured: Buffer[] = [];
  private ended = false;
  /** Small pieces (headers, padding, small files) gathered into one chunk for the reader. */
  private batch: Buffer[] = [];
  private batchBytes = 0;

  constructor(private readonly opts: TarFilterOptions) {
    super();
  }

  /**
   * Headers and small files go out gathered, up to 64 KiB a chunk: a root filesystem is thousands
   * of them, and each chunk costs the reader (a pipe into tar, a hash) a call of its own.
   */
  override push(chunk: Buffer | null): boolean {
    if (chunk !== null && chunk.length < BATCH_BYTES) {
      this.batch.push(chunk);
      this.batchBytes += chunk.length;
      if (this.batchBytes >= BATCH_BYTES) this.pushBatch();
      return true;
    }
    this.pushBatch();
    return super.push(chunk);
  }

  private pushBatch(): void {
    if (!this.batch.length) return;
    const out = this.batch.length === 1 ? this.batch[0] : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    super.push(out);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.consume(chunk);
      this.pushBatch();
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.ended) return done();
    const where = this.remaining > 0 || this.pad > 0 || this.pending.length > 0 ? 'inside an entry' : 'before its end-of-archive marker';
    done(new Error(`tar stream truncated ${where}`));
  }

  private consume(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending.length > 0) {
      // complete the pending header block from the front of the chunk, without copying the rest
      const need = BLOCK - this.pending.length;
      if (buf.length < need) {
        this.pending = Buffer.concat([this.pending, buf]);
        return;
      }
      const block = Buffer.concat([this.pending, buf.subarray(0, need)]);
      this.pending = Buffer.alloc(0);
      buf = buf.subarray(need);
      this.header(block);
    }
    while (buf.length > 0 && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, buf.length);
        this.entryData(buf.subarray(0, n));
        this.remaining -= n;
        buf = buf.subarray(n);
        if (this.remaining === 0) this.entryDataDone();
        continue;
      }
      if (this.pad > 0) {
        const n = Math.min(this.pad, buf.length);
        if (this.current && this.current.decision.action === 'keep' && !this.current.metaKind) this.push(buf.subarray(0, n));
        else if (this.current?.metaKind) this.meta.push(Buffer.from(buf.subarray(0, n)));
        this.pad -= n;
        buf = buf.subarray(n);
        if (this.pad === 0) this.current = undefined;
        continue;
      }
      if (buf.length < BLOCK) {
        this.pending = Buffer.from(buf);
        return;
      }
      const header = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      this.header(header);
    }
  }

  private header(block: Buffer): void {
    if (zeroBlock(block)) {
      this.finishArchive();
      return;
    }
    const type = String.fromCharCode(block[156] || 0x30); // an old-style NUL typeflag is a regular file
    let size = readNumber(block, 124, 12);
    if (type === 'x' || type === 'L' || type === 'K') {
      this.meta.push(Buffer.from(block));
      this.current = { info: { name: '', type, size, mode: 0 }, decision: { action: 'drop' }, metaKind: type === 'x' ? 'pax' : 'gnuname', metaData: [] };
      this.startData(size);
      return;
    }
    if (type === 'g') {
      this.push(Buffer.from(block));
      this.current = { info: { name: '', type, size, mode: 0 }, decision: { action: 'keep' } };
      this.startData(size);
      return;
    }
    let name = readString(block, 0, 100);
    if (block.toString('latin1', 257, 262) === 'ustar') {
      const prefix = readString(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (this.metaName !== undefined) name = this.metaName;
    if (this.metaSize !== undefined) size = this.metaSize;
    const linkname = type === '1' || type === '2' ? (this.metaLink ?? readString(block, 157, 100)) : undefined;
    const info: TarEntryInfo = { name: normalize(name), type, size, mode: readNumber(block, 100, 8), ...(linkname === undefined ? {} : { linkname }) };
    const decision = this.opts.decide(info);
    if (decision.action === 'keep') {
      const clamp = this.opts.clampMtime;
      if (clamp === undefined) {
        for (const m of this.meta) this.push(m);
        this.push(Buffer.from(block));
      } else {
        if (this.meta.length) this.push(withoutPaxTimes(Buffer.concat(this.meta), clamp));
        this.push(clampHeader(Buffer.from(block), clamp));
      }
    } else if (decision.action === 'replace') {
      if (Buffer.byteLength(name) > 100) throw new Error(`cannot replace ${name}: name longer than 100 bytes`);
      this.pushFile(name, decision.content, decision.mode, block);
    } else if (decision.action === 'device') {
      if (Buffer.byteLength(name) > 100) throw new Error(`cannot replace ${name}: name longer than 100 bytes`);
      const mtime = Math.min(readNumber(block, 136, 12), this.opts.clampMtime ?? Infinity);
      this.push(ustarHeader({ name, type: '3', size: 0, mode: decision.mode, mtime, device: [decision.major, decision.minor] }));
    }
    this.meta = [];
    this.metaName = undefined;
    this.metaSize = undefined;
    this.metaLink = undefined;
    this.current = { info, decision };
    this.captured = [];
    // links, devices and directories carry no data even when size says otherwise
    this.startData(type === '0' || type === '7' ? size : 0);
  }

  private startData(size: number): void {
    this.remaining = size;
    this.pad = padding(size);
    if (size === 0) this.entryDataDone();
  }

  private entryData(data: Buffer): void {
    const cur = this.current!;
    if (cur.metaKind) {
      this.meta.push(Buffer.from(data));
      cur.metaData!.push(Buffer.from(data));
    } else if (cur.decision.action === 'keep') {
      this.push(data);
      if (cur.decision.capture) this.captured.push(Buffer.from(data));
    }
  }

  private entryDataDone(): void {
    const cur = this.current!;
    if (cur.metaKind === 'pax') {
      const records = paxRecords(Buffer.concat(cur.metaData!));
      const p = records.get('path');
      if (p) this.metaName = p.toString('utf8');
      const s = records.get('size');
      if (s) this.metaSize = parseInt(s.toString('latin1'), 10);
      const l = records.get('linkpath');
      if (l) this.metaLink = l.toString('utf8');
    } else if (cur.metaKind === 'gnuname' && cur.info.type === 'L') {
      this.metaName = Buffer.concat(cur.metaData!).toString('utf8').replace(/\0+$/, '');
    } else if (cur.metaKind === 'gnuname' && cur.info.type === 'K') {
      this.metaLink = Buffer.concat(cur.metaData!).toString('utf8').replace(/\0+$/, '');
    } else if (!cur.metaKind && cur.decision.action === 'keep' && cur.decision.capture) {
      this.opts.onCapture?.(cur.info, Buffer.concat(this.captured));
      this.captured = [];
    }
    if (this.pad === 0) this.current = undefined;
  }

  /** Emits a regular file owned by root (mtime kept from the entry it replaces, else the epoch or now). */
  private pushFile(name: string, content: Buffer, mode: number, like?: Buffer): void {
    const clamp = this.opts.clampMtime ?? Infinity;
    const mtime = Math.min(like ? readNumber(like, 136, 12) : Math.floor(Date.now() / 1000), clamp);
    this.push(ustarHeader({ name, type: '0', size: content.length, mode, mtime }));
    this.push(content);
    const pad = padding(content.length);
    if (pad) this.push(Buffer.alloc(pad));
  }

  private finishArchive(): void {
    for (const extra of this.opts.append?.() ?? []) this.pushFile(extra.name, extra.content, extra.mode);
    this.push(Buffer.alloc(BLOCK * 2));
    this.ended = true;
  }
}

/** A ustar header for a regular file ("0") or character device ("3") owned by root:root. */
export function ustarHeader(h: { name: string; type: '0' | '3'; size: number; mode: number; mtime: number; device?: [number, number] }): Buffer {
  const b = Buffer.alloc(BLOCK);
  const octal = (value: number, off: number, len: number) => b.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
  b.write(h.name, 0, 100, 'utf8');
  octal(h.mode & 0o7777, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(h.size, 124, 12);
  octal(h.mtime, 136, 12);
  b.write(h.type, 156, 'latin1');
  b.write('ustar\x0000', 257, 'latin1');
  b.write('root', 265, 'latin1');
  b.write('root', 297, 'latin1');
  if (h.device) {
    octal(h.device[0], 329, 8);
    octal(h.device[1], 337, 8);
  }
  return withChecksum(b);
}

function withChecksum(b: Buffer): Buffer {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** A header block with its mtime set to `clamp` when later (octal field; base-256 times are far off anyway). */
function clampHeader(block: Buffer, clamp: number): Buffer {
  if (block[136] & 0x80 || readNumber(block, 136, 12) <= clamp) return block;
  block.write(`${clamp.toString(8).padStart(11, '0')}\0`, 136, 12, 'latin1');
  return withChecksum(block);
}

const TIME_RECORDS = new Set(['mtime', 'atime', 'ctime']);

/** One PAX record, "LEN key=value\n", where LEN counts its own digits. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // space, "=", newline
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

/**
 * Meta entries (PAX, GNU long names) as raw blocks, their own mtimes clamped and PAX time records
 * removed: the entry's (clamped) ustar mtime then stands alone, and sub-second times cannot make
 * bytes differ.
 */
export function withoutPaxTimes(meta: Buffer, clamp: number): Buffer {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos + BLOCK <= meta.length) {
    const header = meta.subarray(pos, pos + BLOCK);
    const size = readNumber(header, 124, 12);
    const data = meta.subarray(pos + BLOCK, pos + BLOCK + size);
    pos += BLOCK + size + padding(size);
    const records = header[156] === 0x78 /* x */ ? paxRecords(data) : undefined;
    if (!records || ![...records.keys()].some((k) => TIME_RECORDS.has(k))) {
      out.push(clampHeader(Buffer.from(header), clamp), data, Buffer.alloc(padding(size)));
      continue;
    }
    const kept = Buffer.concat([...records].filter(([k]) => !TIME_RECORDS.has(k)).map(([k, v]) => paxRecord(k, v)));
    const h = clampHeader(Buffer.from(header), clamp);
    h.write(kept.length.toString(8).padStart(11, '0') + '\0', 124, 12, 'latin1');
    out.push(withChecksum(h), kept, Buffer.alloc(padding(kept.length)));
  }
  return Buffer.concat(out);
}
