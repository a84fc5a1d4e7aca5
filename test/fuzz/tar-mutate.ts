/**
 * Raw tar archives for the differential fuzzer and the filter's unit tests: headers written byte by
 * byte (ustar, GNU, V7 magic; PAX, GNU long names, old GNU sparse), a seeded PRNG, random archives
 * full of links that point out of the root, and mutations (bit flips, truncation, typeflags, PAX
 * size overrides, huge lengths).
 */

import { prng } from './prng.js';

export const BLOCK = 512;

/** A seeded PRNG (test/fuzz/prng.ts) with the helpers the mutators use. */
export function seeded(seed: number) {
  const next = prng(seed);
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)], chance: (p: number) => next() < p };
}
export type Rng = ReturnType<typeof seeded>;

export type Magic = 'ustar' | 'gnu' | 'v7';
const MAGIC: Record<Magic, Buffer> = {
  ustar: Buffer.from('ustar\x0000', 'latin1'),
  gnu: Buffer.from('ustar  \0', 'latin1'),
  v7: Buffer.alloc(8),
};

export interface HeaderFields {
  name: string | Buffer;
  type?: string;
  size?: number;
  mode?: number;
  linkname?: string | Buffer;
  magic?: Magic;
  prefix?: string;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** old GNU sparse: [offset, numbytes] slots in the header, isextended, real size */
  sparse?: { slots: [number, number][]; extended: boolean; realsize: number };
}

const octal = (b: Buffer, off: number, len: number, v: number) =>
  b.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');

/** Recomputes the checksum of a header block in place (and returns it). */
export function fixChecksum(b: Buffer, off = 0): Buffer {
  b.fill(0x20, off + 148, off + 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[off + i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, off + 148, 8, 'latin1');
  return b;
}

export function header(h: HeaderFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  const name = Buffer.isBuffer(h.name) ? h.name : Buffer.from(h.name);
  name.copy(b, 0, 0, Math.min(100, name.length));
  octal(b, 100, 8, h.mode ?? 0o644);
  octal(b, 108, 8, h.uid ?? 0);
  octal(b, 116, 8, h.gid ?? 0);
  octal(b, 124, 12, h.size ?? 0);
  octal(b, 136, 12, h.mtime ?? 1_700_000_000);
  b.write(h.type ?? '0', 156, 1, 'latin1');
  if (h.linkname !== undefined) {
    const l = Buffer.isBuffer(h.linkname) ? h.linkname : Buffer.from(h.linkname);
    l.copy(b, 157, 0, Math.min(100, l.length));
  }
  MAGIC[h.magic ?? 'ustar'].copy(b, 257);
  if ((h.magic ?? 'ustar') !== 'v7') {
    b.write('root', 265, 'latin1');
    b.write('root', 297, 'latin1');
    octal(b, 329, 8, h.devmajor ?? 0);
    octal(b, 337, 8, h.devminor ?? 0);
  }
  if (h.prefix) b.write(h.prefix, 345, 155, 'utf8');
  if (h.sparse) {
    h.sparse.slots.slice(0, 4).forEach(([o, n], i) => {
      octal(b, 386 + 24 * i, 12, o);
      octal(b, 398 + 24 * i, 12, n);
    });
    b[482] = h.sparse.extended ? 1 : 0;
    octal(b, 483, 12, h.sparse.realsize);
  }
  return fixChecksum(b);
}

/** An old GNU sparse extension block: up to 21 slots. */
export function sparseExtension(slots: [number, number][], extended: boolean): Buffer {
  const b = Buffer.alloc(BLOCK);
  slots.slice(0, 21).forEach(([o, n], i) => {
    octal(b, 24 * i, 12, o);
    octal(b, 24 * i + 12, 12, n);
  });
  b[504] = extended ? 1 : 0;
  return b;
}

export const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
export const END = Buffer.alloc(2 * BLOCK);

/** One PAX record, with its self-counting length. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value);
  const body = Buffer.byteLength(key) + v.length + 3;
  let len = body + String(body).length;
  if (String(len).length !== String(body).length) len = body + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), v, Buffer.from('\n')]);
}

/** A PAX extended ("x") or global ("g") header with its data. */
export function pax(records: [string, string | Buffer][] | Buffer, type = 'x'): Buffer {
  const body = Buffer.isBuffer(records) ? records : Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  return Buffer.concat([header({ name: 'PaxHeaders/x', type, size: body.length }), pad(body)]);
}

/** A GNU long name ("L") or long link ("K") header. */
export function gnuLong(type: 'L' | 'K', text: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.isBuffer(text) ? text : Buffer.from(text), Buffer.from([0])]);
  return Buffer.concat([header({ name: '././@LongLink', type, size: body.length, magic: 'gnu' }), pad(body)]);
}

export const file = (name: string, content: string | Buffer, more: Partial<HeaderFields> = {}) => {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return Buffer.concat([header({ name, size: data.length, ...more }), pad(data)]);
};

/** The offsets of header blocks in a well-formed archive (walks sizes; stops at the end or damage). */
export function headerOffsets(tar: Buffer): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos + BLOCK <= tar.length) {
    const h = tar.subarray(pos, pos + BLOCK);
    if (h.every((x) => x === 0)) break;
    out.push(pos);
    const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 0x30);
    const data =
      type === '1' || type === '2' || type === '3' || type === '4' || type === '5' || type === '6' ? 0 : size;
    let ext = 0;
    if (type === 'S' && h[482])
      while (pos + BLOCK * (ext + 2) <= tar.length && tar[pos + BLOCK * (ext + 1) + 504]) ext++;
    if (type === 'S' && h[482]) ext++;
    if (!Number.isFinite(data)) break;
    pos += BLOCK * (1 + ext) + Math.ceil(data / BLOCK) * BLOCK;
  }
  return out;
}

/** Context a case needs: where "outside" is, absolute and relative to the root. */
export interface FuzzPlace {
  /** Absolute path of the sentinel directory beside the roots. */
  outside: string;
}

const NAMES = ['etc', 'usr', 'bin', 'lib', 'var', 'a', 'b', 'lnk', 'up', 'x'];

/**
 * A random archive: directories, files, and links (symlinks absolute and relative, chains, to
 * outside; hardlinks to outside, to symlinks, to ".."), files written through them, long names
 * three ways, devices, FIFOs, old GNU sparse files. Returns the bytes and a label of what it holds.
 */
export function randomArchive(rng: Rng, place: FuzzPlace): { tar: Buffer; label: string } {
  const parts: Buffer[] = [];
  const made: string[] = [];
  const labels: string[] = [];
  const count = 2 + rng.int(10);
  const magic = (): Magic => rng.pick(['ustar', 'ustar', 'gnu', 'v7'] as const);
  const someName = (): string => {
    if (made.length && rng.chance(0.5)) return `${rng.pick(made)}/${rng.pick(NAMES)}${rng.int(3)}`;
    return `${rng.pick(NAMES)}${rng.chance(0.5) ? '' : rng.int(3)}`;
  };
  const target = (): string =>
    rng.pick([
      place.outside,
      `${place.outside}/file`,
      '../outside',
      '../outside/file',
      '../../outside',
      'a',
      'a/b',
      '.',
      '..',
      '/',
      '/etc/x-none',
      rng.pick(made.length ? made : ['a']),
      `./${rng.pick(NAMES)}`,
      `${rng.pick(NAMES)}/../../outside`,
    ]);
  /** a name written one of three ways: ustar (with prefix when long), GNU L, PAX path */
  const named = (name: string, h: Partial<HeaderFields>, link?: string): Buffer[] => {
    const style = rng.int(4);
    const long = name.length > 100 || style >= 2;
    const out: Buffer[] = [];
    let linkField: string | undefined = link;
    if (link !== undefined && (link.length > 100 || rng.chance(0.2))) {
      if (rng.chance(0.5)) out.push(gnuLong('K', link));
      else out.push(pax([['linkpath', link]]));
      linkField = 'placeholder';
    }
    if (long && style === 2) {
      out.push(gnuLong('L', name));
      out.push(header({ ...h, name: name.slice(0, 99), linkname: linkField, magic: 'gnu' }));
    } else if (long && style === 3) {
      out.push(pax([['path', name]]));
      out.push(header({ ...h, name: 'pax-placeholder', linkname: linkField }));
    } else if (name.length > 100 && name.lastIndexOf('/', 155) > 0) {
      const cut = name.lastIndexOf('/', 155);
      out.push(header({ ...h, name: name.slice(cut + 1), prefix: name.slice(0, cut), linkname: linkField }));
    } else out.push(header({ ...h, name, linkname: linkField, magic: h.magic ?? magic() }));
    return out;
  };
  for (let i = 0; i < count; i++) {
    const kind = rng.int(11);
    let name = someName();
    if (rng.chance(0.08)) name = `${name}/${'n'.repeat(60 + rng.int(80))}`;
    if (rng.chance(0.05))
      name = rng.pick([`/${name}`, `./${name}`, `${name}/./x`, `${name}//y`, `../${name}`, `${name}/../../z`]);
    switch (kind) {
      case 0:
        parts.push(...named(`${name}/`, { type: '5', mode: 0o755 }));
        labels.push('dir');
        break;
      case 1:
      case 2: {
        const body = Buffer.from(`content of ${name} ${rng.int(1e6)}\n`.repeat(1 + rng.int(40)));
        parts.push(...named(name, { type: '0', size: body.length, mode: 0o644 }), pad(body));
        labels.push('file');
        break;
      }
      case 3:
      case 4:
        parts.push(...named(name, { type: '2', mode: 0o777 }, target()));
        labels.push('symlink');
        break;
      case 5:
        parts.push(
          ...named(
            name,
            { type: '1' },
            rng.pick([
              `${place.outside}/file`,
              '../outside/file',
              rng.pick(made.length ? made : ['a']),
              `${rng.pick(made.length ? made : ['a'])}/file`,
              'a/../../outside/file',
              '/etc/x-none',
            ]),
          ),
        );
        labels.push('hardlink');
        break;
      case 6: {
        // a file written through something made earlier
        const via = made.length ? rng.pick(made) : 'lnk';
        const body = Buffer.from('owned\n');
        parts.push(
          ...named(`${via}/${rng.pick(['file', 'new', 'dir/new'])}`, { type: '0', size: body.length }),
          pad(body),
        );
        labels.push('through');
        break;
      }
      case 7:
        parts.push(
          ...named(name, { type: rng.pick(['3', '4', '6']), devmajor: 1, devminor: rng.pick([3, 5]), mode: 0o600 }),
        );
        labels.push('node');
        break;
      case 8: {
        // old GNU sparse: parts at block-aligned offsets, maybe an extension block
        const n = 1 + rng.int(8);
        const slots: [number, number][] = [];
        for (let s = 0; s < n; s++) slots.push([s * 4096, 1 + rng.int(700)]);
        const realsize = n * 4096 + rng.int(3) * 4096;
        const stored = slots
          .map(([, len]) => pad(Buffer.alloc(len, 0x41 + s(len))))
          .reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0));
        const size = rng.chance(0.8) ? stored.length : rng.int(stored.length + 2000);
        parts.push(header({ name, type: 'S', size, magic: 'gnu', sparse: { slots, extended: n > 4, realsize } }));
        if (n > 4) parts.push(sparseExtension(slots.slice(4), false));
        parts.push(
          stored.subarray(0, Math.ceil(size / BLOCK) * BLOCK),
          Buffer.alloc(Math.max(0, Math.ceil(size / BLOCK) * BLOCK - stored.length)),
        );
        labels.push('gnu-sparse');
        break;
      }
      case 9: {
        // PAX records that move or rename: size override, path, sparse keys
        const body = Buffer.from('pax body\n');
        const recs: [string, string][] = [];
        if (rng.chance(0.5)) recs.push(['size', String(rng.pick([body.length, 0, 512, 1024, body.length + 1]))]);
        if (rng.chance(0.5)) recs.push(['path', rng.pick([name, `${rng.pick(made.length ? made : ['lnk'])}/p`, ''])]);
        if (rng.chance(0.2)) recs.push(['GNU.sparse.name', someName()]);
        parts.push(pax(recs), header({ name: rng.chance(0.5) ? name : `${name}/`, size: body.length }), pad(body));
        labels.push('pax');
        break;
      }
      default: {
        // a global header, or a PAX header with a huge length
        if (rng.chance(0.5))
          parts.push(pax([[rng.pick(['comment', 'path', 'size']), rng.pick(['x', '1024', name])]], 'g'));
        else
          parts.push(
            header({
              name: 'PaxHeaders/huge',
              type: rng.pick(['x', 'L', 'K']),
              size: rng.pick([2 ** 20 + 1, 2 ** 29, 2 ** 33]),
            }),
          );
        labels.push('meta');
      }
    }
    made.push(name.replace(/\/+$/, ''));
  }
  parts.push(END);
  if (rng.chance(0.3)) parts.push(Buffer.alloc(BLOCK * rng.int(20)));
  return { tar: Buffer.concat(parts), label: labels.join(',') };
}

const s = (n: number) => n % 26;

/** Damages an archive one to three ways; returns the bytes and what was done. */
export function mutate(rng: Rng, tar: Buffer): { tar: Buffer; label: string } {
  let out = Buffer.from(tar);
  const done: string[] = [];
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    const heads = headerOffsets(out);
    const at = heads.length ? rng.pick(heads) : 0;
    switch (rng.int(9)) {
      case 0: {
        const cut = rng.chance(0.5) ? rng.int(out.length) : Math.floor(rng.int(out.length) / BLOCK) * BLOCK;
        out = out.subarray(0, cut);
        done.push(`cut@${cut}`);
        break;
      }
      case 1:
      case 2: {
        // a bit flip in a header, its checksum mended or not
        const byte =
          at +
          rng.pick([
            rng.int(BLOCK),
            124 + rng.int(12),
            156,
            rng.int(100),
            157 + rng.int(100),
            345 + rng.int(155),
            482,
            483 + rng.int(12),
          ]);
        if (byte >= out.length) break;
        out[byte] ^= 1 << rng.int(8);
        const mend = rng.chance(0.7);
        if (mend && at + BLOCK <= out.length) fixChecksum(out, at);
        done.push(`flip@${byte}${mend ? '+sum' : ''}`);
        break;
      }
      case 3: {
        if (at + BLOCK > out.length) break;
        out[at + 156] = rng.pick([...'0123456789DKLMNSVXxgA'].map((c) => c.charCodeAt(0)).concat([0, 0x7f]));
        fixChecksum(out, at);
        done.push(`type@${at}=${String.fromCharCode(out[at + 156])}`);
        break;
      }
      case 4: {
        // a PAX header in front of an entry: size override, or a rename
        const recs: [string, string][] = [
          rng.pick([
            ['size', String(rng.pick([0, 1, 511, 512, 513, 4096, 2 ** 40]))],
            ['path', rng.pick(['lnk/over', '../over', 'a/b', ''])],
            ['linkpath', rng.pick(['/', '..', 'lnk'])],
            ['GNU.sparse.major', '1'],
            ['GNU.sparse.map', '0,100,4096,100'],
          ] as [string, string][]),
        ];
        out = Buffer.concat([out.subarray(0, at), pax(recs), out.subarray(at)]);
        done.push(`pax@${at}:${recs[0][0]}=${recs[0][1]}`);
        break;
      }
      case 5: {
        // a huge length in a header's size field
        if (at + BLOCK > out.length) break;
        const big = rng.pick([2 ** 20 + 1, 2 ** 29, 2 ** 33 - 1]);
        octal(out.subarray(at), 124, 12, big);
        fixChecksum(out, at);
        done.push(`size@${at}=${big}`);
        break;
      }
      case 6: {
        out = Buffer.concat([out.subarray(0, at), Buffer.alloc(BLOCK), out.subarray(at)]);
        done.push(`zero@${at}`);
        break;
      }
      case 7: {
        if (at + BLOCK > out.length) break;
        out = Buffer.concat([out.subarray(0, at + BLOCK), out.subarray(at, at + BLOCK), out.subarray(at + BLOCK)]);
        done.push(`dup@${at}`);
        break;
      }
      default: {
        // the checksum alone damaged
        if (at + 150 > out.length) break;
        out[at + 148 + rng.int(6)] ^= 1;
        done.push(`sum@${at}`);
      }
    }
  }
  return { tar: out, label: done.join(',') };
}
