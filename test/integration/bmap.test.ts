import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, leftovers, sha256File } from '../helpers/deploy.js';
import { BmapMapper, parseBmap, rangeBytes } from '../../src/stream/bmap.js';
import { SparseFileWriter } from '../../src/stream/disk-writer.js';

// A raw GPT disk with an ext4 filesystem holding files, written sparse: bmaptool create maps it
// through SEEK_DATA/SEEK_HOLE; bareon maps it as its raw exporter does, while writing it.
let dir: string;
let raw: string;
let sha: string;
const MiB = 2 ** 20;

const hasTable = async (file: string) => (await execa('sfdisk', ['--json', file], { reject: false })).exitCode === 0;
const readMap = async (file: string) => parseBmap(await readFile(file), file);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-bmap-test-'));
  const tree = path.join(dir, 'tree');
  await mkdir(path.join(tree, 'data'), { recursive: true });
  await execa('sh', ['-c', `head -c 6M /dev/urandom > ${tree}/data/random && seq 1 200000 > ${tree}/data/numbers`]);
  const plain = path.join(dir, 'plain.raw');
  await execa('truncate', ['-s', '96M', plain]);
  await execa('sgdisk', ['-o', '-n', '1:2048:0', '-t', '1:8300', plain]);
  await execa('mkfs.ext4', ['-q', '-F', '-d', tree, '-E', `offset=${MiB}`, plain, `${95 * 1024}k`]);
  // data in the first MiB, between the GPT and the partition, where bareon holds the head back
  await execa('dd', ['if=/dev/urandom', `of=${plain}`, 'bs=1K', 'seek=600', 'count=8', 'conv=notrunc', 'status=none']);
  // the image as bareon-build's raw exporter writes it: zero 64 KiB blocks become holes, and its bmap is made on the way
  raw = path.join(dir, 'disk.raw');
  const mapper = new BmapMapper();
  await pipeline(createReadStream(plain, { highWaterMark: 64 * 1024 }), mapper, new SparseFileWriter(raw));
  await writeFile(path.join(dir, 'bareon.bmap'), mapper.bmap());
  await rm(plain);
  await execa('bmaptool', ['create', '-o', path.join(dir, 'tool.bmap'), raw]);
  sha = await sha256File(raw);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('bmap', () => {
  it("bareon's map of its sparse raw image covers every range bmaptool create finds (SEEK_DATA/SEEK_HOLE), in whole 64 KiB blocks", async () => {
    const ours = await readMap(path.join(dir, 'bareon.bmap'));
    const tool = await readMap(path.join(dir, 'tool.bmap'));
    expect(ours.imageSize).toBe(tool.imageSize);
    expect(ours.ranges.length).toBeGreaterThan(2);
    for (const r of tool.ranges)
      expect(
        ours.ranges.some((o) => o.first <= r.first && r.last <= o.last),
        `${r.first}-${r.last}`,
      ).toBe(true);
    for (const r of ours.ranges) expect(r.first % 16).toBe(0);
    // fed in 64 KiB chunks, the writer leaves holes exactly where the map has none
    expect(ours.ranges).toEqual(tool.ranges);
    expect(ours.mappedBlocks).toBeLessThan(ours.blocksCount / 2);
  });

  it("bmaptool copy writes the raw image with bareon's bmap and verifies every range", async () => {
    const target = path.join(dir, 'bmaptool-copy.img');
    const r = await execa('bmaptool', ['copy', '--bmap', path.join(dir, 'bareon.bmap'), raw, target], { all: true });
    expect(r.all).toMatch(/copying time/);
    await execa('cmp', [raw, target]);
  });

  it('bareon-deploy with a bmap from bmaptool create writes the same bytes as without one, reading only the mapped ranges', async () => {
    await writeFile(`${raw}.bmap`, await readFile(path.join(dir, 'tool.bmap')));
    try {
      const whole = path.join(dir, 'whole.img');
      const w = await deploy([raw, whole, '--checksum', `sha256:${sha}`, '--no-bmap']);
      expect(w.exitCode, String(w.all)).toBe(0);
      expect(String(w.all)).not.toMatch(/bmap .*ranges|mapped by its bmap/);

      const mapped = path.join(dir, 'mapped.img');
      const dry = await deploy([raw, mapped, '--checksum', `sha256:${sha}`, '--dry-run']);
      expect(String(dry.all)).toMatch(/only the \d+ ranges .* that bmap .*disk\.raw\.bmap maps/);
      const m = await deploy([raw, mapped, '--checksum', `sha256:${sha}`]);
      expect(m.exitCode, String(m.all)).toBe(0);
      expect(String(m.all)).toMatch(/bmap .*disk\.raw\.bmap \(beside the image\): \d+ ranges/);
      expect(String(m.all)).toMatch(/mapped by its bmap, every range verified, sha256 verified/);
      await execa('cmp', [whole, mapped]);
      await execa('cmp', [raw, mapped]);
      expect(await leftovers(mapped)).toEqual([]);

      // a target full of old data: the blocks the map leaves out read as zeros afterwards
      const old = path.join(dir, 'old.img');
      await execa('sh', ['-c', `head -c 96M /dev/urandom > ${old}`]);
      const o = await deploy([raw, old, '--checksum', `sha256:${sha}`]);
      expect(o.exitCode, String(o.all)).toBe(0);
      expect(String(o.all)).toMatch(/punched out the old blocks/);
      await execa('cmp', [raw, old]);
    } finally {
      await rm(`${raw}.bmap`, { force: true });
    }
  });

  it("deploys with bareon's own bmap given by --bmap, and refuses a map of another image before writing", async () => {
    const target = path.join(dir, 'own.img');
    const r = await deploy([raw, target, '--bmap', path.join(dir, 'bareon.bmap'), '--no-verify']);
    expect(r.exitCode, String(r.all)).toBe(0);
    await execa('cmp', [raw, target]);

    const other = path.join(dir, 'other.bmap');
    await execa('truncate', ['-s', '8M', path.join(dir, 'other.raw')]);
    await execa('bmaptool', ['create', '-o', other, path.join(dir, 'other.raw')]);
    const refused = path.join(dir, 'refused.img');
    const x = await deploy([raw, refused, '--bmap', other, '--no-verify']);
    expect(x.exitCode).toBe(2);
    expect(String(x.all)).toMatch(/maps an image of 8388608 bytes, but .*disk\.raw has 100663296/);
    expect(await stat(refused).catch(() => undefined)).toBeUndefined();

    const broken = path.join(dir, 'broken.bmap');
    await writeFile(
      broken,
      (await readFile(path.join(dir, 'bareon.bmap'), 'utf8')).replace('<Range chksum', '<Range  chksum'),
    );
    const b = await deploy([raw, refused, '--bmap', broken, '--no-verify']);
    expect(b.exitCode).toBe(2);
    expect(String(b.all)).toMatch(/broken\.bmap: the file's checksum is/);
    expect(await stat(refused).catch(() => undefined)).toBeUndefined();
  });

  it('deploys the bmap a manifest lists beside its raw artifact, pinned by its sha256', async () => {
    const bmap = path.join(dir, 'disk.bmap');
    await writeFile(bmap, await readFile(path.join(dir, 'bareon.bmap')));
    const manifest = path.join(dir, 'disk.manifest.json');
    const write = async (bmapSha: string) =>
      writeFile(
        manifest,
        JSON.stringify({
          manifest_version: 1,
          name: 'disk',
          created: '2024-01-01T00:00:00Z',
          profile_digest: 'x',
          base_image: 'x',
          image: 'x',
          builder: 'debian',
          artifacts: [
            { uri: 'disk.raw', format: 'raw', sha256: sha, size: (await stat(raw)).size },
            { uri: 'disk.bmap', format: 'bmap', sha256: bmapSha, size: (await stat(bmap)).size },
          ],
          packages: [],
        }),
      );
    try {
      await write(await sha256File(bmap));
      const target = path.join(dir, 'manifest.img');
      const r = await deploy([manifest, target]);
      expect(r.exitCode, String(r.all)).toBe(0);
      expect(String(r.all)).toMatch(/bmap .*disk\.bmap \(manifest .*\): \d+ ranges/);
      expect(String(r.all)).toMatch(/every range verified against the bmap the manifest pins/);
      await execa('cmp', [raw, target]);

      await write('0'.repeat(64));
      const refused = path.join(dir, 'manifest-refused.img');
      const x = await deploy([manifest, refused]);
      expect(x.exitCode).toBe(2);
      expect(String(x.all)).toMatch(/disk\.bmap: sha256 [0-9a-f]{64}, but manifest .* records 0{64}/);
      expect(await stat(refused).catch(() => undefined)).toBeUndefined();
    } finally {
      await rm(bmap, { force: true });
    }
  });

  it('fails on a flipped byte in a mapped range, naming the range, and leaves no partition table', async () => {
    const map = await readMap(path.join(dir, 'tool.bmap'));
    // a range past the first MiB, so that the bytes before it were already written when it fails
    const victim = map.ranges.find((r) => rangeBytes(map, r).start >= 2 * MiB)!;
    const { start, end } = rangeBytes(map, victim);
    const flipped = path.join(dir, 'flipped.raw');
    await execa('cp', ['--sparse=always', raw, flipped]);
    const fh = await open(flipped, 'r+');
    const at = Math.floor((start + end) / 2);
    const byte = Buffer.alloc(1);
    await fh.read(byte, 0, 1, at);
    byte[0] ^= 0xff;
    await fh.write(byte, 0, 1, at);
    await fh.close();

    const target = path.join(dir, 'flip.img');
    await execa('truncate', ['-s', '96M', target]);
    await execa('sgdisk', ['-o', '-n', '1:2048:0', target]);
    expect(await hasTable(target)).toBe(true);
    const r = await deploy([flipped, target, '--bmap', path.join(dir, 'tool.bmap'), '--checksum', `sha256:${sha}`]);
    expect(r.exitCode).toBe(1);
    expect(String(r.all)).toContain(
      `range ${victim.first}-${victim.last} (blocks of 4096 bytes, bytes ${start}-${end - 1}) does not match its bmap`,
    );
    expect(String(r.all)).toMatch(/cleared the partition tables/);
    expect(await hasTable(target)).toBe(false);
    expect((await execa('blkid', ['-p', target], { reject: false })).stdout).toBe('');
    expect(await leftovers(target)).toEqual([]);
  });
});
