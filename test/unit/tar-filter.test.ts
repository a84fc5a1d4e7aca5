import { execa } from 'execa';
import { mkdir, mkdtemp, symlink, link, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { TarFilter, type TarFilterOptions } from '../../src/rootfs/tar-filter.js';

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
  await execa('python3', ['-c', `import os; os.setxattr('${path.join(root, 'ping')}', 'user.cap', b'\\x00\\xff\\x01\\x00\\x20')`]);
  const { stdout } = await execa('tar', ['--xattrs', '--xattrs-include=*', '--format=posix', '-C', root, '-cf', '-', '.'], { encoding: 'buffer' });
  return { dir, tar: Buffer.from(stdout) };
}

async function filter(tar: Buffer, opts: TarFilterOptions, chunk = 333): Promise<Buffer> {
  const chunks = Array.from({ length: Math.ceil(tar.length / chunk) }, (_, i) => tar.subarray(i * chunk, (i + 1) * chunk));
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
        e.name === '.dockerenv' ? { action: 'drop' } : e.name === 'etc/hostname' ? { action: 'replace', content: Buffer.from('web1\n'), mode: 0o644 } : { action: 'keep' },
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
    const xattr = await execa('python3', ['-c', `import os; print(os.getxattr('${path.join(dest, 'ping')}', 'user.cap').hex())`]);
    expect(xattr.stdout).toBe('00ff010020');
  });

  it('hands captured entries to the caller', async () => {
    const { tar } = await sampleTar();
    let captured = '';
    await filter(tar, { decide: (e) => ({ action: 'keep', capture: e.name.endsWith('file.txt') }), onCapture: (_e, data) => (captured = data.toString()) });
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
    await expect(filter(tar.subarray(0, firstEntryEnd), { decide: () => ({ action: 'keep' }) })).rejects.toThrow(/before its end-of-archive marker/);
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
    const [a, b] = await Promise.all([first, second].map((s) => filter(s.tar, { decide: keep, append, clampMtime: 1_000_000 })));
    expect(a.equals(b)).toBe(true);
    const listing = (await execa('tar', ['--full-time', '-tv'], { input: a })).stdout.split('\n');
    expect(listing.every((l) => l.includes('1970-01-12 13:46:40'))).toBe(true);
    expect(a.includes(Buffer.from(' atime='))).toBe(false);
    expect(a.includes(Buffer.from(' mtime='))).toBe(false);
    // xattrs, long names and links survive the rewrite
    const out = await mkdtemp(path.join(tmpdir(), 'bareon-clamped-'));
    await execa('tar', ['--xattrs', '--xattrs-include=*', '-C', out, '-xf', '-'], { input: a });
    const cap = await execa('python3', ['-c', `import os; print(os.getxattr('${path.join(out, 'ping')}', 'user.cap').hex())`]);
    expect(cap.stdout).toBe('00ff010020');
    expect(await readFile(path.join(out, 'deep', 'a'.repeat(60), 'b'.repeat(60), 'file.txt'), 'utf8')).toBe('long name\n');
  });

  it('leaves older mtimes alone', async () => {
    const { tar } = await sampleTar();
    const out = await filter(tar, { decide: () => ({ action: 'keep' }), clampMtime: 2 ** 33 - 1 });
    const times = (await execa('tar', ['--full-time', '-tv'], { input: out })).stdout;
    expect(times).toContain(String(new Date().getUTCFullYear()));
  });
});
