/**
 * Tar header fields read the way GNU tar 1.34 reads them when it extracts (list.c, xheader.c,
 * sparse.c): where TarFilter and GNU tar disagreed on a size, a name or a checksum, the filter
 * would show its guard one entry and tar would write another.
 */

/** A tar block. */
export const BLOCK = 512;
/** Blocks that `size` bytes of data take. */
export const blocks = (size: number) => Math.ceil(size / BLOCK);
const isSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isOctal = (c: number) => c >= 0x30 && c <= 0x37;

/** The `len` bytes of `b` from `off`, up to the first NUL. */
export function cString(b: Buffer, off = 0, len = b.length - off): Buffer {
  const end = b.indexOf(0, off);
  return b.subarray(off, end < 0 || end > off + len ? off + len : end);
}

/**
 * A numeric header field as GNU tar's from_header reads it (octal with leading blanks, or
 * base-256), or undefined where GNU tar fails or the value passes Number.MAX_SAFE_INTEGER.
 */
export function gnuNumber(b: Buffer, off: number, len: number, octalOnly = false): number | undefined {
  const lim = off + len;
  let p = off;
  if (b[p] === 0) p++; // tars of old wrote a NUL first when the field before overflowed
  for (;;) {
    if (p === lim) return undefined; // blanks only
    if (!isSpace(b[p])) break;
    p++;
  }
  let value = 0n;
  if (isOctal(b[p])) {
    while (p < lim && isOctal(b[p])) value = value * 8n + BigInt(b[p++] - 0x30);
  } else if (!octalOnly && b[p] === 0x80) {
    for (p++; p < lim; p++) value = value * 256n + BigInt(b[p]);
  } else if (!octalOnly && (b[p] === 0xff || b[p] === 0x2b || b[p] === 0x2d)) {
    return undefined; // negative base-256, or the base-64 of tar 1.13 test versions
  }
  if (p !== lim && b[p] !== 0 && !isSpace(b[p])) return undefined;
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

/** GNU tar's tar_checksum: the recorded sum matches the unsigned (POSIX) or the signed (old Sun) sum. */
export function headerChecksumOk(block: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const recorded = gnuNumber(block, 148, 8, true);
  return recorded === unsigned || recorded === signed;
}

/** A decimal as GNU tar's decode_num takes a PAX value: digits only, up to the first NUL. */
function decimal(value: Buffer, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const text = cString(value).toString('latin1');
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

/** One PAX record: the key, and the raw value (xattrs are binary). */
export interface PaxRecord {
  key: string;
  value: Buffer;
}

/**
 * The records of a PAX header, in order, as GNU tar's decode_record splits them: blanks may lead,
 * a NUL where a record would start ends the list, anything else malformed throws.
 */
export function paxRecords(data: Buffer): PaxRecord[] {
  const records: PaxRecord[] = [];
  let pos = 0;
  for (;;) {
    let p = pos;
    while (p < data.length && (data[p] === 0x20 || data[p] === 0x09)) p++;
    if (p >= data.length || data[p] === 0) return records;
    let q = p;
    while (q < data.length && data[q] >= 0x30 && data[q] <= 0x39) q++;
    if (q === p) throw new Error(`record at byte ${pos} has no length`);
    const len = q - p > 15 ? Infinity : Number(data.toString('latin1', p, q));
    if (len > data.length - pos)
      throw new Error(
        `record at byte ${pos} claims ${data.toString('latin1', p, Math.min(q, p + 20))} bytes, past the header's end`,
      );
    const next = pos + len;
    let k = q;
    while (k < data.length && (data[k] === 0x20 || data[k] === 0x09)) k++;
    if (k === q) throw new Error(`record at byte ${pos} has no blank after its length`);
    let eq = k;
    while (eq < data.length && data[eq] !== 0x3d && data[eq] !== 0) eq++;
    if (eq >= next || data[eq] !== 0x3d) throw new Error(`record at byte ${pos} has no "="`);
    if (data[next - 1] !== 0x0a) throw new Error(`record at byte ${pos} does not end in a newline`);
    records.push({ key: data.toString('utf8', k, eq), value: data.subarray(eq + 1, next - 1) });
    pos = next;
  }
}

/** What the last PAX header before an entry says that moves or renames it. */
export interface PaxState {
  path?: Buffer;
  linkpath?: Buffer;
  size?: number;
  /** Present when GNU tar would extract the entry as a sparse file. */
  sparse?: { major: number; realsize?: number; regionBlocks: number };
}

/** Most parts a sparse map may list (GNU tar allocates them up front). */
const SPARSE_PARTS_LIMIT = 1_000_000;

/**
 * The records that matter for where entries start and what they are called, decoded in order as
 * GNU tar's xheader decoders do (a GNU.sparse.name wins over any later path). Throws where GNU
 * tar would report a malformed value and go on with a different reading.
 */
export function parsePax(records: PaxRecord[]): PaxState {
  const state: PaxState = {};
  let sparseNameDone = false;
  let major = 0;
  let realsize: number | undefined;
  let mapSize = 0;
  let numbytes: number[] = [];
  let sparseRecords = false;
  const num = (r: PaxRecord, max?: number) => {
    const n = decimal(r.value, max);
    if (n === undefined) throw new Error(`invalid ${r.key}=${cString(r.value).toString('utf8').slice(0, 40)}`);
    return n;
  };
  for (const r of records) {
    switch (r.key) {
      case 'path':
        if (!sparseNameDone) state.path = cString(r.value);
        break;
      case 'GNU.sparse.name':
        sparseNameDone = true;
        state.path = cString(r.value);
        break;
      case 'linkpath':
        state.linkpath = cString(r.value);
        break;
      case 'size':
        state.size = num(r);
        break;
      case 'GNU.sparse.major':
        major = num(r, 2 ** 31 - 1);
        break;
      case 'GNU.sparse.minor':
        num(r, 2 ** 31 - 1);
        break;
      case 'GNU.sparse.size':
      case 'GNU.sparse.realsize':
        realsize = num(r);
        break;
      case 'GNU.sparse.numblocks':
        mapSize = num(r, SPARSE_PARTS_LIMIT);
        numbytes = [];
        break;
      case 'GNU.sparse.offset':
        num(r);
        if (numbytes.length >= mapSize) throw new Error(`excess GNU.sparse.offset`);
        sparseRecords = true;
        break;
      case 'GNU.sparse.numbytes':
        if (numbytes.length >= mapSize) throw new Error(`excess GNU.sparse.numbytes`);
        numbytes.push(num(r));
        sparseRecords = true;
        break;
      case 'GNU.sparse.map': {
        const values = cString(r.value).toString('latin1').split(',');
        if (
          values.length % 2 ||
          values.length > 2 * SPARSE_PARTS_LIMIT ||
          !values.every((v) => /^[0-9]+$/.test(v) && Number(v) <= Number.MAX_SAFE_INTEGER)
        )
          throw new Error('invalid GNU.sparse.map');
        numbytes = values.filter((_, i) => i % 2).map(Number);
        sparseRecords = true;
        break;
      }
    }
  }
  if (major > 0 || numbytes.length > 0 || sparseRecords) {
    state.sparse = {
      major,
      ...(realsize === undefined ? {} : { realsize }),
      regionBlocks: numbytes.reduce((sum, n) => sum + blocks(n), 0),
    };
  }
  return state;
}

/** The map of an old GNU sparse header ("S") and its extension blocks, checked as oldgnu_add_sparse does. */
export class OldGnuSparseMap {
  private state: 'ok' | 'finish' | 'fail' = 'ok';
  regionBlocks = 0;

  constructor(private readonly realsize: number) {}

  get ok(): boolean {
    return this.state === 'ok';
  }

  get failed(): boolean {
    return this.state === 'fail';
  }

  /** Reads `count` 24-byte (offset, numbytes) slots from `off`, stopping where GNU tar stops. */
  add(block: Buffer, off: number, count: number): void {
    for (let i = 0; i < count && this.state === 'ok'; i++) {
      const at = off + 24 * i;
      if (block[at + 12] === 0) {
        this.state = 'finish';
        break;
      }
      const offset = gnuNumber(block, at, 12);
      const numbytes = gnuNumber(block, at + 12, 12);
      if (offset === undefined || numbytes === undefined || offset + numbytes > this.realsize) this.state = 'fail';
      else this.regionBlocks += blocks(numbytes);
    }
  }
}

/**
 * The map at the front of a PAX 1.0 sparse file's data ("count\n" then "offset\nsize\n" pairs),
 * read as it streams past, with GNU tar's limits: 19 characters a number, each part inside the
 * file's real size.
 */
export class PaxSparseMapReader {
  done = false;
  error: string | undefined;
  /** Bytes of map text read, up to its last newline. */
  bytes = 0;
  regionBlocks = 0;
  private line: number[] = [];
  private count = -1;
  private values = 0;
  private offset = 0;

  constructor(private readonly realsize: number) {}

  feed(data: Buffer): void {
    for (let i = 0; i < data.length && !this.done && !this.error; i++) {
      const c = data[i];
      this.bytes++;
      if (c !== 0x0a) {
        if (this.line.length >= 19) this.error = 'a number in its sparse map is too long';
        this.line.push(c);
        continue;
      }
      const value = decimal(Buffer.from(this.line));
      this.line = [];
      if (value === undefined) this.error = 'its sparse map is malformed';
      else if (this.count < 0) {
        if (value > SPARSE_PARTS_LIMIT) this.error = `its sparse map lists ${value} parts`;
        this.count = value;
      } else if (this.values++ % 2 === 0) this.offset = value;
      else if (this.offset + value > this.realsize) this.error = "a part of its sparse map lies past the file's size";
      else this.regionBlocks += blocks(value);
      if (this.count >= 0 && this.values === 2 * this.count) this.done = true;
    }
  }
}
