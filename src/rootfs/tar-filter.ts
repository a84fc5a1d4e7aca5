import { Transform, type TransformCallback } from 'node:stream';
import { BareonError } from '../core/errors.js';
import {
  BLOCK,
  blocks,
  cString,
  gnuNumber,
  headerChecksumOk,
  OldGnuSparseMap,
  PaxSparseMapReader,
  paxRecords,
  parsePax,
  type PaxState,
} from './tar-headers.js';

/** The archive is not a tar stream the filter can pass on exactly as GNU tar will read it. */
export class TarFormatError extends BareonError {}

/** What the filter knows about an entry when it decides its fate. */
export interface TarEntryInfo {
  /** Path without a leading "./" or "/"; directories end with "/". The final name: PAX `path`, else GNU long name, else ustar prefix/name. */
  name: string;
  /** ustar typeflag: "0" file, "1" hardlink, "2" symlink, "3"/"4" devices, "5" directory, "S" GNU sparse file… */
  type: string;
  /** Bytes of data the entry carries in the archive (for a sparse file, its stored parts). */
  size: number;
  mode: number;
  /** Target of a hardlink ("1") or symlink ("2"), as stored: PAX `linkpath`, else GNU long link, else ustar. */
  linkname?: string;
  /** The name's bytes, one character each ("latin1"): exact where `name`, read as UTF-8, is not. */
  rawName?: string;
  /** The link target's bytes, one character each. */
  rawLinkname?: string;
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

/** Largest PAX, GNU long-name or long-link header the filter holds in memory (real ones are a few KiB). */
export const META_LIMIT = 1024 * 1024;
/** Largest sum of such headers before one entry. */
const META_TOTAL_LIMIT = 4 * META_LIMIT;
/** Largest run of GNU sparse extension blocks (21 parts each) after one header. */
const SPARSE_EXT_LIMIT = 2048;

const zeroBlock = (b: Buffer) => b.every((x) => x === 0);

/** A numeric field for display (mode, mtime): lenient, unlike the sizes that keep the stream in step. */
function readNumber(b: Buffer, off: number, len: number): number {
  return gnuNumber(b, off, len) ?? 0;
}

const normalize = (name: string) => name.replace(/^(\.\/|\/)+/, '');
const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(n < 1024 * 1024 ? 2 : 0)} MiB`;

/** Types GNU tar extracts without reading data, whatever their size field says. */
const NO_DATA = new Set(['1', '2', '3', '4', '5', '6']);
const REGULAR = new Set(['0', '7']);
const META_TYPES: Record<string, 'pax' | 'global' | 'longname' | 'longlink'> = {
  x: 'pax',
  X: 'pax',
  g: 'global',
  L: 'longname',
  K: 'longlink',
};
/** Keys of a PAX global header that would rename, resize or make sparse every entry after it. */
const GLOBAL_REFUSED = /^(path|linkpath|size|GNU\.sparse\..*)$/;
const MAGIC_USTAR = Buffer.from('ustar\0', 'latin1');
const MAGIC_GNU = Buffer.from('ustar  \0', 'latin1');

/** Output pieces smaller than this are gathered into chunks of about this size. */
const BATCH_BYTES = 64 * 1024;

interface Current {
  info: TarEntryInfo;
  decision: TarDecision;
  meta?: 'pax' | 'global' | 'longname' | 'longlink';
  metaData?: Buffer[];
  /** PAX sparse 1.0: the map at the front of the data, read as it passes. */
  sparseMap?: PaxSparseMapReader;
}

/**
 * A streaming tar filter that works on raw blocks: kept entries pass through byte for byte (PAX
 * records such as binary SCHILY.xattr values, hardlinks, device nodes and sparse maps are
 * untouched), dropped entries vanish with their PAX/GNU prefix headers, and replaced entries are
 * re-encoded. It reads the stream as GNU tar extracts it (checksums, last PAX header wins, PAX
 * `size` and `path`, GNU long names, old GNU and PAX sparse files) and refuses with TarFormatError
 * where the two could read different entries out of the same bytes: what `decide` is shown is then
 * what tar writes. Memory is bounded by META_LIMIT-sized headers plus captured entries.
 */
export class TarFilter extends Transform {
  private pending = Buffer.alloc(0);
  /** Raw bytes of PAX/GNU meta entries preceding the next real header. */
  private meta: Buffer[] = [];
  private metaBytes = 0;
  private pax: PaxState | undefined;
  private longName: Buffer | undefined;
  private longLink: Buffer | undefined;
  private remaining = 0;
  private pad = 0;
  private current: Current | undefined;
  /** An old GNU sparse header waiting for its extension blocks. */
  private sparse: { header: Buffer; ext: Buffer[]; map: OldGnuSparseMap; size: number } | undefined;
  private captured: Buffer[] = [];
  private ended = false;
  /** Bytes read so far, and the last entry seen: where an error happened. */
  private offset = 0;
  private lastName = '';
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
      // what was gathered stays here: it may hold the start of an entry that was refused
      this.batch = [];
      this.batchBytes = 0;
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.ended) return done();
    const where =
      this.remaining > 0 || this.pad > 0 || this.pending.length > 0 || this.sparse
        ? 'inside an entry'
        : 'before its end-of-archive marker';
    done(
      new TarFormatError(
        `tar stream truncated ${where} (after ${this.offset} bytes${this.lastName ? `, last entry "${this.lastName}"` : ''})`,
        { hint: 'the archive ended early; copy or download it again' },
      ),
    );
  }

  /** A TarFormatError that says where in the stream it happened. */
  private refuse(
    what: string,
    hint = 'GNU tar could read this archive differently than bareon checks it; rebuild it with GNU tar, bsdtar or Docker',
  ): never {
    throw new TarFormatError(
      `${what} (at byte ${this.offset}${this.lastName ? `, after entry "${this.lastName}"` : ''})`,
      { hint },
    );
  }

  private consume(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending.length > 0) {
      // complete the pending block from the front of the chunk, without copying the rest
      const need = BLOCK - this.pending.length;
      if (buf.length < need) {
        this.pending = Buffer.concat([this.pending, buf]);
        return;
      }
      const block = Buffer.concat([this.pending, buf.subarray(0, need)]);
      this.pending = Buffer.alloc(0);
      buf = buf.subarray(need);
      this.block(block);
    }
    while (buf.length > 0 && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, buf.length);
        this.entryData(buf.subarray(0, n));
        this.remaining -= n;
        this.offset += n;
        buf = buf.subarray(n);
        if (this.remaining === 0) this.entryDataDone();
        continue;
      }
      if (this.pad > 0) {
        const n = Math.min(this.pad, buf.length);
        const cur = this.current;
        if (cur?.meta && cur.meta !== 'global') this.keepMeta(buf.subarray(0, n));
        else if (cur?.decision.action === 'keep') this.push(buf.subarray(0, n));
        if (cur?.meta === 'longname' || cur?.meta === 'longlink') cur.metaData!.push(Buffer.from(buf.subarray(0, n)));
        this.pad -= n;
        this.offset += n;
        buf = buf.subarray(n);
        if (this.pad === 0) {
          if (cur?.meta === 'longname' || cur?.meta === 'longlink') this.metaDone(cur);
          this.current = undefined;
        }
        continue;
      }
      if (buf.length < BLOCK) {
        this.pending = Buffer.from(buf);
        return;
      }
      const block = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      this.block(block);
    }
  }

  private block(block: Buffer): void {
    if (this.sparse) this.sparseExtension(block);
    else this.header(block);
    this.offset += BLOCK;
  }

  private keepMeta(data: Buffer): void {
    this.metaBytes += data.length;
    if (this.metaBytes > META_TOTAL_LIMIT)
      this.refuse(
        `more than ${mib(META_TOTAL_LIMIT)} of PAX/GNU extended headers before one entry`,
        'the archive is damaged or hostile; rebuild it',
      );
    this.meta.push(Buffer.from(data));
  }

  private header(block: Buffer): void {
    if (zeroBlock(block)) {
      this.finishArchive();
      return;
    }
    // GNU tar skips a block whose checksum fails and reads on from the next one, where this filter
    // would be inside the entry's data: what it extracted there would never have been checked
    if (!headerChecksumOk(block))
      this.refuse(
        'a tar header has a bad checksum (damaged archive, or not a tar)',
        'the archive is damaged; copy or download it again',
      );
    const flag = block[156] ? String.fromCharCode(block[156]) : '0'; // an old-style NUL typeflag is a regular file
    const metaKind = META_TYPES[flag];
    // GNU tar reads no size for hardlinks: they carry no data whatever the field says
    const headerSize = flag === '1' ? 0 : gnuNumber(block, 124, 12);
    if (headerSize === undefined)
      this.refuse(
        `a tar header of type "${flag}" has an unreadable size field`,
        'the archive is damaged; copy or download it again',
      );
    if (metaKind) return this.metaHeader(block, metaKind, flag, headerSize);

    const gnu = block.subarray(257, 265).equals(MAGIC_GNU);
    const nameBytes = this.entryName(block);
    const rawName = nameBytes.toString('latin1');
    const pax = this.pax;
    const linkBytes = pax?.linkpath ?? this.longLink ?? cString(block, 157, 100);
    const name = normalize(nameBytes.toString('utf8'));
    const size = pax?.size ?? headerSize;
    const shown = name || rawName;
    this.lastName = shown;

    let data = size;
    let sparseMap: PaxSparseMapReader | undefined;
    if (NO_DATA.has(flag)) {
      // GNU tar skips no data after these when extracting, but does when it skips the entry:
      // refused rather than guessed (no tar writes data after them)
      if (flag !== '5' && size !== 0) this.refuse(`entry "${shown}" of type "${flag}" claims ${size} bytes of data`);
      if (pax?.sparse) this.refuse(`entry "${shown}" of type "${flag}" carries a PAX sparse map`);
      data = 0;
    } else if (flag === 'S') {
      if (!gnu) this.refuse(`sparse entry "${shown}" lacks the GNU magic that makes GNU tar read it as sparse`);
      if (pax?.size !== undefined || pax?.sparse)
        this.refuse(`old GNU sparse entry "${shown}" also has PAX size or sparse records`);
      const realsize = gnuNumber(block, 483, 12);
      if (realsize === undefined) this.refuse(`sparse entry "${shown}" has an unreadable real size`);
      const map = new OldGnuSparseMap(realsize);
      map.add(block, 386, 4);
      if (map.failed) this.refuse(`sparse entry "${shown}" has a sparse map GNU tar rejects`);
      if (map.ok && block[482]) {
        // extension blocks follow: the entry is decided once they are read
        this.sparse = { header: Buffer.from(block), ext: [], map, size };
        return;
      }
      this.checkSparseBlocks(shown, map.regionBlocks, size);
    } else if (REGULAR.has(flag) && size > 0 && /\/$/.test(rawName)) {
      // GNU tar makes a directory of a file whose name ends in "/" and reads none of its data
      this.refuse(`file "${shown}" has a name ending in "/" and ${size} bytes of data`);
    } else if (pax?.sparse) {
      if (!REGULAR.has(flag)) this.refuse(`entry "${shown}" of type "${flag}" carries a PAX sparse map`);
      if (pax.sparse.major > 0) sparseMap = new PaxSparseMapReader(pax.sparse.realsize ?? size);
      else this.checkSparseBlocks(shown, pax.sparse.regionBlocks, size);
    }
    this.entry(
      block,
      { name, type: flag, size, mode: readNumber(block, 100, 8), rawName, ...this.link(flag, linkBytes) },
      nameBytes.toString('utf8'),
      data,
      [],
      sparseMap,
    );
  }

  private link(flag: string, linkBytes: Buffer): Pick<TarEntryInfo, 'linkname' | 'rawLinkname'> {
    return flag === '1' || flag === '2'
      ? { linkname: linkBytes.toString('utf8'), rawLinkname: linkBytes.toString('latin1') }
      : {};
  }

  /** The entry's final name, as GNU tar takes it: PAX path, else GNU long name, else (prefix/)name. */
  private entryName(block: Buffer): Buffer {
    if (this.pax?.path) return this.pax.path;
    if (this.longName) return this.longName;
    const name = cString(block, 0, 100);
    const prefix = cString(block, 345, 155);
    // GNU tar joins the prefix only under the POSIX magic ("ustar\0"); in GNU headers it is other fields
    if (prefix.length && block.subarray(257, 263).equals(MAGIC_USTAR))
      return Buffer.concat([prefix, Buffer.from('/'), name]);
    return name;
  }

  private checkSparseBlocks(name: string, regionBlocks: number, size: number): void {
    // GNU tar reads each part of a sparse file in whole blocks, then skips what is left of `size`
    if (regionBlocks > blocks(size))
      this.refuse(`sparse entry "${name}" maps ${regionBlocks} blocks of data into ${blocks(size)} stored ones`);
  }

  private sparseExtension(block: Buffer): void {
    const s = this.sparse!;
    s.ext.push(Buffer.from(block));
    if (s.ext.length > SPARSE_EXT_LIMIT)
      this.refuse(`sparse entry "${this.lastName}" has more than ${SPARSE_EXT_LIMIT} extension blocks`);
    s.map.add(block, 0, 21);
    if (s.map.failed) this.refuse(`sparse entry "${this.lastName}" has a sparse map GNU tar rejects`);
    if (s.map.ok && block[504]) return;
    this.sparse = undefined;
    this.checkSparseBlocks(this.lastName, s.map.regionBlocks, s.size);
    const h = s.header;
    const nameBytes = this.entryName(h);
    const name = nameBytes.toString('utf8');
    this.entry(
      h,
      {
        name: normalize(name),
        type: 'S',
        size: s.size,
        mode: readNumber(h, 100, 8),
        rawName: nameBytes.toString('latin1'),
      },
      name,
      s.size,
      s.ext,
    );
  }

  private metaHeader(block: Buffer, kind: NonNullable<Current['meta']>, flag: string, size: number): void {
    const what =
      kind === 'pax' || kind === 'global'
        ? `PAX ${kind === 'global' ? 'global' : 'extended'} header`
        : `GNU long ${kind === 'longname' ? 'name' : 'link'} header`;
    if (size > META_LIMIT)
      this.refuse(
        `a ${what} of ${mib(size)} (bareon reads at most ${mib(META_LIMIT)})`,
        'no honest archive has such headers; the archive is damaged or hostile',
      );
    if (kind === 'global') this.push(Buffer.from(block));
    else this.keepMeta(block);
    this.current = {
      info: { name: '', type: flag, size, mode: 0 },
      decision: { action: kind === 'global' ? 'keep' : 'drop' },
      meta: kind,
      metaData: [],
    };
    this.startData(size);
  }

  /** Decides an entry and sends on what it keeps; `name` is the name as stored, for a replacement. */
  private entry(
    block: Buffer,
    info: TarEntryInfo,
    name: string,
    data: number,
    extension: Buffer[],
    sparseMap?: PaxSparseMapReader,
  ): void {
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
      for (const e of extension) this.push(e);
    } else if (decision.action === 'replace') {
      if (Buffer.byteLength(name) > 100) throw new TarFormatError(`cannot replace ${name}: name longer than 100 bytes`);
      this.pushFile(name, decision.content, decision.mode, block);
    } else if (decision.action === 'device') {
      if (Buffer.byteLength(name) > 100) throw new TarFormatError(`cannot replace ${name}: name longer than 100 bytes`);
      const mtime = Math.min(readNumber(block, 136, 12), this.opts.clampMtime ?? Infinity);
      this.push(
        ustarHeader({ name, type: '3', size: 0, mode: decision.mode, mtime, device: [decision.major, decision.minor] }),
      );
    }
    this.meta = [];
    this.metaBytes = 0;
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    this.current = { info, decision, ...(sparseMap ? { sparseMap } : {}) };
    this.captured = [];
    this.startData(data);
  }

  private startData(size: number): void {
    this.remaining = size;
    this.pad = padding(size);
    if (size === 0) this.entryDataDone();
  }

  private entryData(data: Buffer): void {
    const cur = this.current!;
    if (cur.meta) {
      if (cur.meta !== 'global') this.keepMeta(data);
      else this.push(data);
      cur.metaData!.push(Buffer.from(data));
      return;
    }
    if (cur.sparseMap && !cur.sparseMap.done) {
      cur.sparseMap.feed(data);
      if (cur.sparseMap.error) this.refuse(`sparse entry "${cur.info.name}": ${cur.sparseMap.error}`);
    }
    if (cur.decision.action === 'keep') {
      this.push(data);
      if (cur.decision.capture) this.captured.push(Buffer.from(data));
    }
  }

  private entryDataDone(): void {
    const cur = this.current!;
    // GNU tar reads a long name up to its first NUL in whole blocks, padding included: it is read once they have passed
    if (cur.meta === 'longname' || cur.meta === 'longlink') {
      if (this.pad === 0) this.metaDone(cur);
    } else if (cur.meta) this.metaDone(cur);
    else {
      if (cur.sparseMap) {
        if (!cur.sparseMap.done) this.refuse(`sparse entry "${cur.info.name}": its sparse map runs past its data`);
        this.checkSparseBlocks(cur.info.name, blocks(cur.sparseMap.bytes) + cur.sparseMap.regionBlocks, cur.info.size);
      }
      if (cur.decision.action === 'keep' && cur.decision.capture) {
        this.opts.onCapture?.(cur.info, Buffer.concat(this.captured));
        this.captured = [];
      }
    }
    if (this.pad === 0) this.current = undefined;
  }

  private metaDone(cur: Current): void {
    const data = Buffer.concat(cur.metaData!);
    if (cur.meta === 'longname') this.longName = cString(data);
    else if (cur.meta === 'longlink') this.longLink = cString(data);
    else {
      let records: ReturnType<typeof paxRecords>;
      try {
        records = paxRecords(data);
      } catch (err) {
        this.refuse(
          `a PAX ${cur.meta === 'global' ? 'global' : 'extended'} header is malformed: ${(err as Error).message}`,
        );
      }
      if (cur.meta === 'global') {
        const bad = records.find((r) => GLOBAL_REFUSED.test(r.key));
        if (bad) this.refuse(`a PAX global header sets "${bad.key}" for every entry after it`);
      } else {
        // GNU tar keeps only the last PAX header before an entry
        try {
          this.pax = parsePax(records);
        } catch (err) {
          this.refuse(`a PAX extended header is malformed: ${(err as Error).message}`);
        }
      }
    }
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
export function ustarHeader(h: {
  name: string;
  type: '0' | '3';
  size: number;
  mode: number;
  mtime: number;
  device?: [number, number];
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  const octal = (value: number, off: number, len: number) =>
    b.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
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
    if (!records?.some((r) => TIME_RECORDS.has(r.key))) {
      out.push(clampHeader(Buffer.from(header), clamp), data, Buffer.alloc(padding(size)));
      continue;
    }
    const kept = Buffer.concat(records.filter((r) => !TIME_RECORDS.has(r.key)).map((r) => paxRecord(r.key, r.value)));
    const h = clampHeader(Buffer.from(header), clamp);
    h.write(`${kept.length.toString(8).padStart(11, '0')}\0`, 124, 12, 'latin1');
    out.push(withChecksum(h), kept, Buffer.alloc(padding(kept.length)));
  }
  return Buffer.concat(out);
}
