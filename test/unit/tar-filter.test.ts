import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, symlink, link, writeFile, readFile, open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BareonError } from '../../src/core/errors.js';
import { extractGuard } from '../../src/rootfs/extract-guard.js';
import { TarFilter, type TarEntryInfo, type TarFilterOptions } from '../../src/rootfs/tar-filter.js';
import { decompressor } from '../../src/source/decompress.js';
import { BLOCK, END, file, gnuLong, header, pad, pax } from '../fuzz/tar-mutate.js';

const trimZeros = (b: Buffer) => {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
};

/** A POSIX tar made by GNU tar: binary xattr, hardlink, symlink, FIFO, a long name. */
async function sampleTar(): Promise<{ dir: string; tar: Buffer }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-tar-'));
  const root = path.join(dir, 'root');
  const long = path.join(root, 'deep', 'a'.repeat(60), 'b'.repeat(60));
  await mkdir(long, { recursive: true });
  await mkdir(path.join(root, 'etc'));
  await writeFile(path.join(long, 'file.txt'), 'long name\n');
  await writeFile(path.join(root, 'etc', 'hostname'), '');
  await writeFile(path.join(root, '.dockerenv'), '');
  await writeFile(path.join(root, 'ping'), Buffer.alloc(70_000, 7));
  await link(path.join(root, 'ping'), path.join(root, 'ping-hardlink'));
  await symlink('ping', path.join(root, 'ping-symlink'));
  await execa('mkfifo', [path.join(root, 'fifo')]);
  await execa('python3', [
    '-c',
    `import os; os.setxattr('${path.join(root, 'ping')}', 'user.cap', b'\\x00\\xff\\x01\\x00\\x20')`,
  ]);
  const { stdout } = await execa(
    'tar',
    ['--xattrs', '--xattrs-include=*', '--format=posix', '-C', root, '-cf', '-', '.'],
    { encoding: 'buffer' },
  );
  return { dir, tar: Buffer.from(stdout) };
}

async function filter(tar: Buffer, opts: TarFilterOptions, chunk = 333): Promise<Buffer> {
  const chunks = Array.from({ length: Math.ceil(tar.length / chunk) }, (_, i) =>
    tar.subarray(i * chunk, (i + 1) * chunk),
  );
  return buffer(Readable.from(chunks).pipe(new TarFilter(opts)));
}

describe('the raw tar filter', () => {
  it('passes kept entries through byte for byte, whatever the chunking', async () => {
    const { tar } = await sampleTar();
    for (const chunk of [1, 511, 512, 4096, 1 << 20]) {
      const out = await filter(tar, { decide: () => ({ action: 'keep' }) }, chunk);
      expect(trimZeros(out).equals(trimZeros(tar))).toBe(true);
    }
  });

  it('drops and replaces entries, keeping binary xattrs, links and long names of the rest', async () => {
    const { dir, tar } = await sampleTar();
    const out = await filter(tar, {
      decide: (e) =>
        e.name === '.dockerenv'
          ? { action: 'drop' }
          : e.name === 'etc/hostname'
            ? { action: 'replace', content: Buffer.from('web1\n'), mode: 0o644 }
            : { action: 'keep' },
      append: () => [{ name: 'etc/added', content: Buffer.from('new\n'), mode: 0o600 }],
    });
    const list = (await execa('tar', ['-tv'], { input: out })).stdout;
    expect(list).not.toContain('.dockerenv');
    expect(list).toMatch(/-rw-r--r-- root\/root\s+5 .* \.\/etc\/hostname/);
    expect(list).toMatch(/-rw------- root\/root\s+4 .* etc\/added/);
    expect(list).toContain(`./deep/${'a'.repeat(60)}/${'b'.repeat(60)}/file.txt`);
    expect(list).toMatch(/hrw.* \.\/ping-hardlink link to \.\/ping/);
    expect(list).toMatch(/lrwx.* \.\/ping-symlink -> ping/);
    expect(list).toMatch(/prw.* \.\/fifo/);

    const dest = path.join(dir, 'out');
    await mkdir(dest);
    await execa('tar', ['--xattrs', '--xattrs-include=*', '-C', dest, '-xf', '-'], { input: out });
    expect(await readFile(path.join(dest, 'etc/hostname'), 'utf8')).toBe('web1\n');
    const xattr = await execa('python3', [
      '-c',
      `import os; print(os.getxattr('${path.join(dest, 'ping')}', 'user.cap').hex())`,
    ]);
    expect(xattr.stdout).toBe('00ff010020');
  });

  it('hands captured entries to the caller', async () => {
    const { tar } = await sampleTar();
    let captured = '';
    await filter(tar, {
      decide: (e) => ({ action: 'keep', capture: e.name.endsWith('file.txt') }),
      onCapture: (_e, data) => (captured = data.toString()),
    });
    expect(captured).toBe('long name\n');
  });

  it('fails on a truncated archive instead of passing it as whole', async () => {
    const { tar } = await sampleTar();
    const cut = tar.subarray(0, tar.indexOf(Buffer.alloc(70_000, 7).subarray(0, 512)) + 1000);
    await expect(filter(cut, { decide: () => ({ action: 'keep' }) })).rejects.toThrow(/truncated/);
  });
});

describe('the raw tar filter on an archive cut at an entry boundary', () => {
  it('fails when the end-of-archive marker is missing', async () => {
    const { tar } = await sampleTar();
    const firstEntryEnd = 512 * 3; // the "./" directory: a PAX header block, its data block, the ustar block
    await expect(filter(tar.subarray(0, firstEntryEnd), { decide: () => ({ action: 'keep' }) })).rejects.toThrow(
      /before its end-of-archive marker/,
    );
  });
});

describe('the tar filter with SOURCE_DATE_EPOCH', () => {
  it('clamps mtimes and drops PAX times, so two exports of the same tree made at different times give the same bytes', async () => {
    const first = await sampleTar();
    await new Promise((r) => setTimeout(r, 1100));
    const second = await sampleTar();
    expect(first.tar.equals(second.tar)).toBe(false); // GNU tar's PAX records carry sub-second times
    const keep: TarFilterOptions['decide'] = () => ({ action: 'keep' });
    const append = () => [{ name: 'etc/added', content: Buffer.from('new\n'), mode: 0o644 }];
    const [a, b] = await Promise.all(
      [first, second].map((s) => filter(s.tar, { decide: keep, append, clampMtime: 1_000_000 })),
    );
    expect(a.equals(b)).toBe(true);
    const listing = (await execa('tar', ['--full-time', '-tv'], { input: a })).stdout.split('\n');
    expect(listing.every((l) => l.includes('1970-01-12 13:46:40'))).toBe(true);
    expect(a.includes(Buffer.from(' atime='))).toBe(false);
    expect(a.includes(Buffer.from(' mtime='))).toBe(false);
    // xattrs, long names and links survive the rewrite
    const out = await mkdtemp(path.join(tmpdir(), 'bareon-clamped-'));
    await execa('tar', ['--xattrs', '--xattrs-include=*', '-C', out, '-xf', '-'], { input: a });
    const cap = await execa('python3', [
      '-c',
      `import os; print(os.getxattr('${path.join(out, 'ping')}', 'user.cap').hex())`,
    ]);
    expect(cap.stdout).toBe('00ff010020');
    expect(await readFile(path.join(out, 'deep', 'a'.repeat(60), 'b'.repeat(60), 'file.txt'), 'utf8')).toBe(
      'long name\n',
    );
  });

  it('leaves older mtimes alone', async () => {
    const { tar } = await sampleTar();
    const out = await filter(tar, { decide: () => ({ action: 'keep' }), clampMtime: 2 ** 33 - 1 });
    const times = (await execa('tar', ['--full-time', '-tv'], { input: out })).stdout;
    expect(times).toContain(String(new Date().getUTCFullYear()));
  });
});

const keepAll: TarFilterOptions = { decide: () => ({ action: 'keep' }) };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A sparse file: holes, and `parts` runs of data at 64 KiB steps (more than four make GNU extension blocks). */
async function sparseTree(parts: number): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'bareon-sparse-'));
  const fh = await open(path.join(root, 'disk.img'), 'w');
  for (let i = 0; i < parts; i++)
    await fh.write(Buffer.alloc(3000 + i * 100, 0x41 + i), 0, 3000 + i * 100, i * 65536 + 512 * i);
  await fh.truncate(parts * 65536 + 123_456);
  await fh.close();
  await writeFile(path.join(root, 'plain'), 'plain\n');
  return root;
}

/** The filter, with bareon-deploy's guard, piped into GNU tar as rootfs-tar runs it; resolves to the root. */
async function extractThroughFilter(tar: Buffer, chunk = 333): Promise<string> {
  const dest = await mkdtemp(path.join(tmpdir(), 'bareon-x-'));
  const out = await filter(tar, { decide: extractGuard() }, chunk);
  await execa(
    'tar',
    ['--extract', '--numeric-owner', '--same-owner', '--same-permissions', '--file=-', '--directory', dest],
    { input: out },
  );
  return dest;
}

describe('GNU sparse files (issue 9: honest archives were refused)', () => {
  for (const format of ['gnu', 'pax-0.0', 'pax-0.1', 'pax-1.0']) {
    it(`passes tar --sparse --format=${format} through intact, and GNU tar extracts the same file`, async () => {
      const root = await sparseTree(9);
      const [fmt, version] = format.split('-');
      const args = [
        '--sparse',
        `--format=${fmt === 'gnu' ? 'gnu' : 'posix'}`,
        ...(version ? [`--sparse-version=${version}`] : []),
        '-C',
        root,
        '-cf',
        '-',
        '.',
      ];
      const tar = Buffer.from((await execa('tar', args, { encoding: 'buffer' })).stdout);
      if (fmt === 'gnu')
        expect(tar[156 + 512 * (tar.indexOf(Buffer.from('./disk.img')) / 512)]).toBe('S'.charCodeAt(0));
      const original = await readFile(path.join(root, 'disk.img'));
      for (const chunk of [1, 512, 4096, 1 << 20]) {
        const out = await filter(tar, { decide: extractGuard() }, chunk);
        expect(trimZeros(out).equals(trimZeros(tar))).toBe(true);
      }
      const dest = await extractThroughFilter(tar);
      expect(sha(await readFile(path.join(dest, 'disk.img')))).toBe(sha(original));
      expect((await stat(path.join(dest, 'disk.img'))).size).toBe(original.length);
      expect(await readFile(path.join(dest, 'plain'), 'utf8')).toBe('plain\n');
    });
  }

  it('reads the extension blocks of an old GNU sparse header, and refuses a map that outgrows the stored data', async () => {
    // six parts and the zero-length one at the real size that GNU tar writes last
    const slots: [number, number][] = [
      ...Array.from({ length: 6 }, (_, i): [number, number] => [i * 4096, 512]),
      [6 * 4096, 0],
    ];
    const stored = Buffer.alloc(6 * 512, 0x42);
    const ext = Buffer.alloc(BLOCK);
    slots.slice(4).forEach(([o, n], i) => {
      ext.write(o.toString(8).padStart(11, '0'), 24 * i, 'latin1');
      ext.write(n.toString(8).padStart(11, '0'), 24 * i + 12, 'latin1');
    });
    const sparse = Buffer.concat([
      header({
        name: 'sp',
        type: 'S',
        size: stored.length,
        magic: 'gnu',
        sparse: { slots, extended: true, realsize: 6 * 4096 },
      }),
      ext,
      stored,
    ]);
    const good = Buffer.concat([sparse, file('after', 'after\n'), END]);
    const dest = await extractThroughFilter(good);
    expect(await readFile(path.join(dest, 'after'), 'utf8')).toBe('after\n');
    expect((await stat(path.join(dest, 'sp'))).size).toBe(6 * 4096);
    // the map says six 512-byte parts, the size field one block: GNU tar would read past it
    const lying = Buffer.concat([
      header({ name: 'sp', type: 'S', size: 512, magic: 'gnu', sparse: { slots, extended: true, realsize: 6 * 4096 } }),
      ext,
      stored.subarray(0, 512),
      file('after', 'x'),
      END,
    ]);
    await expect(filter(lying, keepAll)).rejects.toThrow(/maps 6 blocks of data into 1 stored ones/);
  });
});

/** A lazy source: `head`, then zero blocks up to `limit` bytes; counts what was pulled. */
function lazy(head: Buffer, limit: number) {
  const seen = { bytes: 0 };
  const stream = Readable.from(
    (function* () {
      seen.bytes += head.length;
      yield head;
      for (let sent = head.length; sent < limit; sent += 65536) {
        seen.bytes += 65536;
        yield Buffer.alloc(65536);
      }
    })(),
  );
  return { stream, seen };
}

describe('extended headers are bounded (issue 13: a 512 MiB PAX header took 1.7 GB)', () => {
  for (const type of ['x', 'L', 'K', 'g']) {
    it(`refuses a ${type} header of 512 MiB at its header, naming the limit`, async () => {
      const { stream, seen } = lazy(
        Buffer.concat([file('first', 'ok\n'), header({ name: 'PaxHeaders/big', type, size: 512 * 1024 * 1024 })]),
        8 * 1024 * 1024,
      );
      const err = await buffer(stream.pipe(new TarFilter(keepAll))).catch((e: Error) => e);
      expect(err).toBeInstanceOf(BareonError);
      expect((err as Error).message).toMatch(/of 512 MiB \(bareon reads at most 1 MiB\).*after entry "first"/);
      expect(seen.bytes).toBeLessThan(2 * 1024 * 1024);
    });
  }

  it('keeps headers of up to 1 MiB (long xattrs, long names)', async () => {
    const big = Buffer.alloc(900_000, 0x61);
    const tar = Buffer.concat([pax([['SCHILY.xattr.user.big', big]]), file('f', 'x'), END]);
    expect(trimZeros(await filter(tar, keepAll)).equals(trimZeros(tar))).toBe(true);
  });
});

describe('decompressor errors (issue 13)', () => {
  it('name the source when gzip finds the stream corrupt', async () => {
    const gz = (await execa('gzip', ['-c'], { input: Buffer.alloc(100_000, 7), encoding: 'buffer' }))
      .stdout as unknown as Buffer;
    const bad = Buffer.from(gz);
    bad[gz.length >> 1] ^= 0xff;
    const err = await pipeline(
      Readable.from([bad]),
      decompressor('gz', undefined, '/srv/images/rootfs.tar.gz'),
      new Writable({ write: (_c, _e, cb) => cb() }),
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(BareonError);
    expect((err as Error).message).toMatch(/gzip: \/srv\/images\/rootfs\.tar\.gz \(gz\) is corrupt or truncated/);
    const cut = await pipeline(
      Readable.from([gz.subarray(0, 100)]),
      decompressor('gz', undefined, 'cut.tar.gz'),
      new Writable({ write: (_c, _e, cb) => cb() }),
    ).catch((e: Error) => e);
    expect((cut as Error).message).toMatch(/cut\.tar\.gz \(gz\) is corrupt or truncated: unexpected end of file/);
  });

  it('name the source when zstd finds the stream corrupt', async () => {
    const zst = (await execa('zstd', ['-q', '-c'], { input: Buffer.alloc(100_000, 7), encoding: 'buffer' }))
      .stdout as unknown as Buffer;
    const err = await pipeline(
      Readable.from([zst.subarray(0, zst.length - 4)]),
      decompressor('zst', undefined, 'https://example.org/r.tar.zst'),
      new Writable({ write: (_c, _e, cb) => cb() }),
    ).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/zstd: https:\/\/example\.org\/r\.tar\.zst \(zst\) is corrupt or truncated/);
  });

  for (const kind of ['gz', 'zst'] as const) {
    it(`leave a failure downstream (a full disk) as it is, not as a corrupt ${kind} stream`, async () => {
      const tool = kind === 'gz' ? ['gzip', '-c', '-1'] : ['zstd', '-q', '-c', '-1'];
      const packed = (
        await execa(tool[0], tool.slice(1), {
          input: createHash('sha512').update('x').digest().toString('hex').repeat(200_000),
          encoding: 'buffer',
        })
      ).stdout as unknown as Buffer;
      let writes = 0;
      const full = new Writable({
        write: (_c, _e, cb) =>
          ++writes > 1
            ? cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }))
            : cb(),
      });
      const d = decompressor(kind, undefined, 'r.tar');
      const errors: Error[] = [];
      d.on('error', (e) => errors.push(e));
      const err = await pipeline(Readable.from([packed]), d, full).catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 300)); // the killed tool's exit comes later
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      expect(errors.map((e) => e.message).join('\n')).not.toMatch(/corrupt/);
    });
  }
});

/** Names the filter shows its `decide`, and whether it refused the archive. */
async function decisions(tar: Buffer, chunk = 333): Promise<{ names: string[]; error?: Error }> {
  const names: string[] = [];
  const guard = extractGuard();
  const decide = (e: TarEntryInfo) => {
    names.push(e.name);
    return guard(e);
  };
  const error = await filter(tar, { decide }, chunk).then(
    () => undefined,
    (e: Error) => e,
  );
  return { names, error };
}

describe('the filter and guard see what GNU tar writes (final names, exact stepping)', () => {
  const hidden = file('lnk/passwd', 'owned\n');
  const symlinkOut = header({ name: 'lnk', type: '2', linkname: '/etc' });

  it('takes the last PAX header before an entry, as GNU tar does', async () => {
    const tar = Buffer.concat([
      symlinkOut,
      pax([['path', 'harmless']]),
      pax([['comment', 'second']]),
      file('lnk/passwd', 'x'),
      END,
    ]);
    const r = await decisions(tar);
    expect(r.error?.message).toMatch(/unsafe tar entry "lnk\/passwd": it goes through the symlink "lnk"/);
  });

  it('lets a PAX path win over a GNU long name in either order', async () => {
    for (const meta of [
      [pax([['path', 'lnk/passwd']]), gnuLong('L', 'harmless')],
      [gnuLong('L', 'harmless'), pax([['path', 'lnk/passwd']])],
    ]) {
      const r = await decisions(Buffer.concat([symlinkOut, ...meta, file('x', 'x'), END]));
      expect(r.error?.message).toMatch(/"lnk\/passwd": it goes through the symlink "lnk"/);
    }
  });

  it('reads a GNU long name up to its NUL through the block padding, as GNU tar does (fuzz seed 1235022406)', async () => {
    const longName = Buffer.concat([
      header({ name: '././@LongLink', type: 'L', size: 3, magic: 'gnu' }),
      pad(Buffer.from('lnk/passwd\0')),
    ]);
    const r = await decisions(Buffer.concat([symlinkOut, longName, file('x', 'x'), END]));
    expect(r.error?.message).toMatch(/"lnk\/passwd": it goes through the symlink "lnk"/);
  });

  it('reads no ustar prefix in GNU headers (GNU tar takes those bytes for other fields)', async () => {
    const gnu = header({ name: 'lnk/passwd', size: 2, magic: 'gnu', prefix: 'junk' });
    const r = await decisions(Buffer.concat([symlinkOut, gnu, pad(Buffer.from('x\n')), END]));
    expect(r.error?.message).toMatch(/"lnk\/passwd": it goes through the symlink/);
  });

  it('folds "." and repeated slashes, so a/./lnk is the same symlink as a/lnk', async () => {
    const r = await decisions(
      Buffer.concat([
        header({ name: 'a/', type: '5' }),
        header({ name: 'a/./lnk', type: '2', linkname: '/etc' }),
        file('a//lnk/passwd', 'x'),
        END,
      ]),
    );
    expect(r.error?.message).toMatch(/through the symlink "a\/lnk"/);
  });

  it('keeps a symlink a symlink when a directory entry of its name follows (GNU tar keeps it)', async () => {
    const r = await decisions(
      Buffer.concat([
        header({ name: 'lnk', type: '2', linkname: 'etc-real' }),
        header({ name: 'lnk/', type: '5' }),
        file('lnk/passwd', 'x'),
        END,
      ]),
    );
    expect(r.error?.message).toMatch(/through the symlink "lnk"/);
  });

  it('keeps a symlink a symlink when an empty file entry of its name with a trailing "/" follows (GNU tar takes it for a directory)', async () => {
    for (const type of ['0', '7']) {
      const r = await decisions(
        Buffer.concat([
          header({ name: 'lnk', type: '2', linkname: '/etc' }),
          header({ name: 'lnk/', type, size: 0 }),
          file('lnk/cron.d/evil', 'x'),
          END,
        ]),
      );
      expect(r.error?.message, `type ${type}`).toMatch(/"lnk\/cron.d\/evil": it goes through the symlink "lnk"/);
    }
  });

  it('takes a hardlink to a symlink for a symlink, and refuses what goes through it', async () => {
    const ok = await decisions(Buffer.concat([symlinkOut, header({ name: 'h', type: '1', linkname: 'lnk' }), END]));
    expect(ok.error).toBeUndefined();
    const through = await decisions(
      Buffer.concat([symlinkOut, header({ name: 'h', type: '1', linkname: 'lnk' }), file('h/passwd', 'x'), END]),
    );
    expect(through.error?.message).toMatch(/"h\/passwd": it goes through the symlink "h"/);
  });

  it('keeps absolute names and hardlinks to absolute paths inside the root, as GNU tar strips the "/"', async () => {
    const tar = Buffer.concat([
      file('/etc/shadow-test', 'inside\n'),
      header({ name: 'hl', type: '1', linkname: '/etc/shadow-test' }),
      END,
    ]);
    const dest = await extractThroughFilter(tar);
    expect(await readFile(path.join(dest, 'etc/shadow-test'), 'utf8')).toBe('inside\n');
    expect((await stat(path.join(dest, 'hl'))).ino).toBe((await stat(path.join(dest, 'etc/shadow-test'))).ino);
    const out = await decisions(
      Buffer.concat([symlinkOut, header({ name: 'h', type: '1', linkname: '/lnk/passwd' }), END]),
    );
    expect(out.error?.message).toMatch(/a hardlink through the symlink "lnk"/);
  });

  it('refuses a header whose checksum fails (GNU tar skips it and reads headers out of its data)', async () => {
    const bad = header({ name: 'cover', size: 1024 });
    bad[0] ^= 1; // "bover", checksum now wrong
    const tar = Buffer.concat([
      symlinkOut,
      bad,
      pad(Buffer.concat([hidden, Buffer.alloc(BLOCK)])).subarray(0, 1024),
      file('after', 'x'),
      END,
    ]);
    // GNU tar alone extracts the hidden entry
    const listed = (await execa('tar', ['-tf', '-'], { input: tar, reject: false })).stdout;
    expect(listed).toContain('lnk/passwd');
    expect((await decisions(tar)).error?.message).toMatch(/bad checksum/);
  });

  it('refuses data after a file whose name ends in "/" (GNU tar makes a directory and reads the data as headers)', async () => {
    const tar = Buffer.concat([
      symlinkOut,
      header({ name: 'dir/', size: 1024 }),
      pad(Buffer.concat([hidden, Buffer.alloc(BLOCK)])).subarray(0, 1024),
      file('after', 'x'),
      END,
    ]);
    expect((await decisions(tar)).error?.message).toMatch(/name ending in "\/" and 1024 bytes of data/);
  });

  it('refuses a PAX record GNU tar would reject (no newline), and a PAX size on a symlink', async () => {
    const body = Buffer.from('12 size=1024X');
    const noNewline = Buffer.concat([
      header({ name: 'PaxHeaders/x', type: 'x', size: body.length }),
      pad(body),
      file('f', Buffer.alloc(0)),
      hidden,
      Buffer.alloc(512),
      END,
    ]);
    expect((await decisions(noNewline)).error?.message).toMatch(/PAX extended header is malformed: .*newline/);
    const onSymlink = Buffer.concat([
      pax([['size', '1024']]),
      header({ name: 's', type: '2', linkname: 't' }),
      hidden,
      Buffer.alloc(512),
      END,
    ]);
    expect((await decisions(onSymlink)).error?.message).toMatch(/type "2" claims 1024 bytes of data/);
  });

  it('reads a Solaris "X" header as GNU tar does (a PAX header)', async () => {
    const x = pax([['path', 'lnk/passwd']], 'X');
    expect((await decisions(Buffer.concat([symlinkOut, x, file('harmless', 'x'), END]))).error?.message).toMatch(
      /"lnk\/passwd"/,
    );
  });

  it('refuses a PAX global header that renames or resizes every entry after it', async () => {
    const r = await decisions(Buffer.concat([pax([['path', 'lnk/passwd']], 'g'), symlinkOut, file('x', 'x'), END]));
    expect(r.error?.message).toMatch(/global header sets "path"/);
    const comment = await decisions(Buffer.concat([pax([['comment', 'git archive']], 'g'), file('x', 'x'), END]));
    expect(comment.error).toBeUndefined();
  });

  it('fails cleanly (a BareonError) on any cut of an archive', async () => {
    const tar = Buffer.concat([pax([['path', 'p'.repeat(200)]]), file('x', 'y'.repeat(1000)), END]);
    for (let cut = 0; cut < tar.length - 1024; cut += 97) {
      const err = await filter(tar.subarray(0, cut), keepAll).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(BareonError);
    }
  });
});
