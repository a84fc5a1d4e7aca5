import { execa } from 'execa';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarToNewc } from '../../src/rootfs/tar-to-newc.js';
import { bareon } from '../helpers/cli.js';

/** A small root tree as `docker export` spells it: "./"-less names, directories first. */
function rootTar(): Readable {
  const pack = tar.pack();
  const mtime = new Date(1_700_000_000_000);
  pack.entry({ name: 'etc/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'etc/fstab', mode: 0o644, mtime }, 'UUID=1234 / ext4 defaults 0 1\n');
  pack.entry({ name: 'boot/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'boot/vmlinuz-6.1.0-9-amd64', mode: 0o644, mtime }, Buffer.alloc(70_000, 9));
  pack.entry({ name: 'boot/vmlinuz-6.1.0-10-amd64', mode: 0o644, mtime }, Buffer.alloc(100_001, 10));
  pack.entry({ name: 'usr/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'usr/bin/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'usr/bin/perl', mode: 0o755, uid: 0, gid: 0, mtime }, 'perl, twice\n');
  pack.entry({ name: 'usr/bin/perl5.36', type: 'link', linkname: 'usr/bin/perl', mode: 0o755, mtime });
  pack.entry({ name: 'usr/sbin/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'usr/sbin/init', type: 'symlink', linkname: '/lib/systemd/systemd', mode: 0o777, mtime });
  pack.entry({ name: 'home/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'home/admin/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000, mtime });
  pack.entry({ name: 'home/admin/odd', mode: 0o4750, uid: 1000, gid: 1000, mtime }, 'xyz');
  pack.entry({ name: 'dev/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'dev/console', type: 'character-device', devmajor: 5, devminor: 1, mode: 0o600, mtime });
  pack.entry({ name: 'run/', type: 'directory', mode: 0o755, mtime });
  pack.entry({ name: 'run/initctl', type: 'fifo', mode: 0o600, mtime });
  pack.finalize();
  return pack as unknown as Readable;
}

describe('tarToNewc', () => {
  let dir: string;
  const kernels = new Map<string, number>();
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bareon-newc-'));
    const stream = tarToNewc(rootTar(), {
      decide: (name) =>
        name === 'etc/fstab'
          ? { action: 'replace', content: Buffer.from('# ram\n') }
          : name === 'boot/vmlinuz-6.1.0-9-amd64'
            ? { action: 'drop' }
            : { action: 'keep' },
      watch: (name) =>
        name.startsWith('boot/vmlinuz-') ? (d) => kernels.set(name, (kernels.get(name) ?? 0) + d.length) : undefined,
      append: (names) => (names.has('usr/sbin/init') ? [{ name: 'init', symlink: '/usr/sbin/init', mode: 0o777 }] : []),
    });
    // read only later, as a pipeline that first creates its output file does
    await new Promise((r) => setTimeout(r, 200));
    const cpio = await buffer(stream);
    await writeFile(path.join(dir, 'root.cpio'), cpio);
    await execa('sh', ['-c', 'mkdir tree && cd tree && cpio -idm --quiet --no-absolute-filenames < ../root.cpio'], {
      cwd: dir,
    });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('gives an archive GNU cpio unpacks into the same tree: data, modes, owners, mtimes, devices, symlinks', async () => {
    const tree = path.join(dir, 'tree');
    expect(await readFile(path.join(tree, 'usr/bin/perl'), 'utf8')).toBe('perl, twice\n');
    expect((await readFile(path.join(tree, 'boot/vmlinuz-6.1.0-10-amd64'))).length).toBe(100_001);
    const odd = await stat(path.join(tree, 'home/admin/odd'));
    expect([odd.mode & 0o7777, odd.uid, odd.gid, odd.mtimeMs]).toEqual([0o4750, 1000, 1000, 1_700_000_000_000]);
    expect((await stat(path.join(tree, 'home/admin'))).mode & 0o7777).toBe(0o700);
    const console = await stat(path.join(tree, 'dev/console'));
    expect([console.isCharacterDevice(), console.rdev >> 8, console.rdev & 0xff]).toEqual([true, 5, 1]);
    expect((await stat(path.join(tree, 'run/initctl'))).isFIFO()).toBe(true);
    expect(await readlink(path.join(tree, 'usr/sbin/init'))).toBe('/lib/systemd/systemd');
  });

  it('keeps hardlinks as links, replaces, drops and appends entries, and shows watched files as they pass, dropped or not', async () => {
    const tree = path.join(dir, 'tree');
    const [a, b] = await Promise.all(['usr/bin/perl', 'usr/bin/perl5.36'].map((p) => stat(path.join(tree, p))));
    expect(b.ino).toBe(a.ino);
    expect(await readFile(path.join(tree, 'usr/bin/perl5.36'), 'utf8')).toBe('perl, twice\n');
    expect(await readFile(path.join(tree, 'etc/fstab'), 'utf8')).toBe('# ram\n');
    expect(await readlink(path.join(tree, 'init'))).toBe('/usr/sbin/init');
    expect(Object.fromEntries(kernels)).toEqual({
      'boot/vmlinuz-6.1.0-9-amd64': 70_000,
      'boot/vmlinuz-6.1.0-10-amd64': 100_001,
    });
    await expect(stat(path.join(tree, 'boot/vmlinuz-6.1.0-9-amd64'))).rejects.toThrow(/ENOENT/);
    expect((await stat(path.join(tree, 'boot/vmlinuz-6.1.0-10-amd64'))).size).toBe(100_001);
  });

  it('fails on a hardlink whose target it has not seen, and on a cut tar stream', async () => {
    const pack = tar.pack();
    pack.entry({ name: 'a', type: 'link', linkname: 'missing' });
    pack.finalize();
    await expect(buffer(tarToNewc(pack as unknown as Readable))).rejects.toThrow(/a is a hardlink to missing/);
    const whole = await buffer(rootTar());
    await expect(buffer(tarToNewc(Readable.from([whole.subarray(0, 5000)])))).rejects.toThrow();
  });
});

describe('the netboot exporter', () => {
  it('refuses a profile without a kernel before anything is built', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-netboot-'));
    await writeFile(
      path.join(dir, 'p.yaml'),
      'name: nb\nbase: {distro: debian, suite: bookworm, variant: minbase}\noutputs: [netboot]\n',
    );
    const r = await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out'), '--dry-run']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /outputs: netboot needs a kernel, and profile nb is not bootable\nhint: set bootable: true/,
    );
  });
});
