import { execa } from 'execa';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { bareon, BIN } from '../helpers/cli.js';
import { jsonEvents } from '../helpers/events.js';
import { bareonContainers } from '../helpers/docker.js';
import { TEST_BASE_IMAGE } from '../helpers/images.js';

async function project(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-builder-'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
  return dir;
}

describe('the image builder', () => {
  it('detects apt in a base image, installs packages and exports tar.gz', async () => {
    const dir = await project({
      'p.yaml': stringify({
        name: 'img',
        builder: 'image',
        base: { image: TEST_BASE_IMAGE },
        packages: ['less'],
        files: [{ path: '/opt/app/run.sh', source: './run.sh', mode: '0755' }],
        outputs: ['tar.gz'],
      }),
      'run.sh': '#!/bin/sh\necho app\n',
    });
    const r = await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out')]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(String(r.all)).toMatch(/gzip with pigz on \d+ cores/);
    const tgz = path.join(dir, 'out/img.tar.gz');
    expect((await execa('tar', ['-xzOf', tgz, 'opt/app/run.sh'])).stdout).toBe('#!/bin/sh\necho app');
    expect((await execa('tar', ['-tzvf', tgz, 'opt/app/run.sh'])).stdout).toMatch(/^-rwxr-xr-x root\/root/);
    expect((await execa('tar', ['-xzOf', tgz, 'var/lib/dpkg/status'], { maxBuffer: 1 << 26 })).stdout).toContain(
      'Package: less',
    );
  });

  it('says how to bootstrap when the base image is neither local nor pullable', async () => {
    const dir = await project({
      'p.yaml': stringify({ name: 'x', builder: 'image', base: { image: 'registry.invalid/nothing:1' } }),
    });
    const r = await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('base image registry.invalid/nothing:1 is not local and cannot be pulled');
    expect(r.stderr).toContain('bareon image bootstrap');
    expect(await bareonContainers()).toEqual([]);
  });
});

describe('the dockerfile builder', () => {
  it("builds the Dockerfile through the Engine API, then applies the profile's steps", async () => {
    const dir = await project({
      Dockerfile: `FROM ${TEST_BASE_IMAGE}\nCOPY hello.txt /hello.txt\nRUN echo from-dockerfile > /from-dockerfile\n`,
      'hello.txt': 'hello\n',
      'p.yaml': stringify({
        name: 'df',
        builder: 'dockerfile',
        dockerfile: 'Dockerfile',
        base: { image: TEST_BASE_IMAGE },
        run: ['cat /from-dockerfile > /after'],
        outputs: ['tar'],
      }),
    });
    const r = await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out')]);
    expect(r.exitCode, String(r.all)).toBe(0);
    const tar = path.join(dir, 'out/df.tar');
    expect((await execa('tar', ['-xOf', tar, 'hello.txt'])).stdout).toBe('hello');
    expect((await execa('tar', ['-xOf', tar, 'after'])).stdout).toBe('from-dockerfile');
    const manifest = JSON.parse(await readFile(path.join(dir, 'out/df.manifest.json'), 'utf8'));
    expect(manifest.builder).toBe('dockerfile');
  });
});

describe('bareon image bootstrap', () => {
  it('reuses an image bootstrapped from the same inputs and tags it as asked', async () => {
    const r = await bareon('bareon', ['image', 'bootstrap', 'debian:bookworm']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(r.stdout).toMatch(/^(reused|bootstrapped) bareon\/base-debian:bookworm-[0-9a-f]{12} /);
    const ids = await Promise.all(
      ['debian:bookworm', TEST_BASE_IMAGE].map((ref) =>
        execa('docker', ['image', 'inspect', '-f', '{{.Id}}', ref]).then((x) => x.stdout),
      ),
    );
    expect(ids[0]).toBe(ids[1]);
  });
});

describe('bareon gc', () => {
  it('removes leftover containers and prunes a profile’s cache images past the age budget', async () => {
    const name = `gc-probe-${Date.now()}`;
    const dir = await project({
      'p.yaml': stringify({
        name,
        builder: 'image',
        base: { image: TEST_BASE_IMAGE },
        run: [`echo ${name} > /probe`],
        outputs: ['tar'],
      }),
    });
    expect((await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out')])).exitCode).toBe(0);
    const cacheImages = async () =>
      (await execa('docker', ['images', '-aq', '--filter', `label=org.bareon.cache.profile=${name}`])).stdout
        .split('\n')
        .filter(Boolean);
    expect((await cacheImages()).length).toBe(2); // run[0] and finalize are new; prepare is shared with other profiles
    await execa('docker', ['create', '--label', 'org.bareon.run=crashed-run', TEST_BASE_IMAGE, '/bin/true']);
    // a user's container from the built image: the image carries the run label empty, and so does it
    const [built] = await cacheImages();
    const label = `{{index .Config.Labels "org.bareon.run"}}`;
    expect((await execa('docker', ['image', 'inspect', '-f', label, built])).stdout).toBe('');
    const { stdout: users } = await execa('docker', ['create', built, '/bin/true']);
    try {
      const keep = await bareon('bareon', ['gc', '--profile', name]);
      expect(keep.exitCode, String(keep.all)).toBe(0);
      expect(keep.stdout).toMatch(/removed 1 container\(s\)/);
      expect((await execa('docker', ['inspect', '-f', '{{.Id}}', users], { reject: false })).exitCode).toBe(0);
      expect((await cacheImages()).length).toBe(2);
    } finally {
      await execa('docker', ['rm', '-f', users], { reject: false });
    }

    await new Promise((r) => setTimeout(r, 1100));
    const prune = await bareon('bareon', ['gc', '--profile', name, '--max-age', '0s']);
    expect(prune.stdout).toMatch(/2 cache image\(s\)/);
    expect(await cacheImages()).toEqual([]);
    expect(await bareonContainers()).toEqual([]);
  });
});

describe('the shared apt archive cache', () => {
  it('keeps downloaded packages in a volume, out of the images: a second profile downloads only what is new', async () => {
    const build = async (name: string, packages: string[]) => {
      const dir = await project({
        'p.yaml': stringify({ name, builder: 'image', base: { image: TEST_BASE_IMAGE }, packages, outputs: ['tar'] }),
      });
      const r = await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out'), '--no-cache']);
      expect(r.exitCode, String(r.all)).toBe(0);
      return {
        log: String(r.all),
        image: JSON.parse(await readFile(path.join(dir, 'out', `${name}.manifest.json`), 'utf8')).image as string,
      };
    };
    const first = await build('apt-cache-a', ['less']);
    const inVolume = (
      await execa('docker', ['run', '--rm', '-v', 'bareon-apt-archives:/archives', TEST_BASE_IMAGE, 'ls', '/archives'])
    ).stdout;
    expect(inVolume).toMatch(/^less_.*\.deb$/m);
    // never part of the image
    expect(
      (await execa('docker', ['run', '--rm', first.image, 'sh', '-c', 'ls /var/cache/apt/archives/ /var/cache/apt/']))
        .stdout,
    ).not.toMatch(/\.deb|\.bin/);

    // tree is new to the cache whatever ran before (the volume outlives test runs)
    await execa('docker', [
      'run',
      '--rm',
      '-v',
      'bareon-apt-archives:/archives',
      TEST_BASE_IMAGE,
      'sh',
      '-c',
      'rm -f /archives/tree_*.deb',
    ]);
    const second = await build('apt-cache-b', ['less', 'tree']);
    expect(second.log).toMatch(/Get:\d+ \S+ \S+ \S+ tree /);
    expect(second.log).not.toMatch(/Get:\d+ \S+ \S+ \S+ less /);
  });
});

describe('the ext4 exporter', () => {
  it('writes a filesystem image of the root tree that e2fsck finds clean', async () => {
    const dir = await project({
      'p.yaml': stringify({
        name: 'fsimg',
        builder: 'image',
        base: { image: TEST_BASE_IMAGE },
        files: [{ path: '/etc/motd', content: 'ext4 image\n' }],
        outputs: [{ format: 'ext4', label: 'rootfs' }],
      }),
    });
    const r = await bareon('build', [path.join(dir, 'p.yaml'), '-o', path.join(dir, 'out')]);
    expect(r.exitCode, String(r.all)).toBe(0);
    const img = path.join(dir, 'out/fsimg.ext4');
    await execa('e2fsck', ['-fn', img]);
    expect((await execa('debugfs', ['-R', 'cat /etc/motd', img])).stdout).toBe('ext4 image');
    expect((await execa('dumpe2fs', ['-h', img])).stdout).toMatch(/Filesystem volume name:\s+rootfs/);
    expect(await bareonContainers()).toEqual([]);
  });
});

describe('interrupting an image build', () => {
  it('removes the toolbox and the partial artifact on SIGINT and exits 130', async () => {
    const dir = await project({
      'p.yaml': stringify({ name: 'sigimg', builder: 'image', base: { image: TEST_BASE_IMAGE }, outputs: ['ext4'] }),
    });
    const out = path.join(dir, 'out');
    const child = execa(process.execPath, [BIN.build, path.join(dir, 'p.yaml'), '-o', out, '--log-format', 'json'], {
      reject: false,
      env: { BAREON_PLUGIN_PATH: '' },
    });
    await new Promise<void>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => {
        if (jsonEvents(d.toString()).some((e) => e.event === 'started' && e.task.startsWith('mkfs.ext4'))) resolve();
      }),
    );
    child.kill('SIGINT');
    expect((await child).exitCode).toBe(130);
    expect(await bareonContainers()).toEqual([]);
    const left = await execa('sh', ['-c', `ls -A ${out} 2>/dev/null || true`]);
    expect(left.stdout).not.toMatch(/\.partial/);
  });
});
