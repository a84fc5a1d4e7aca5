import type { DiskExecutor } from '../core/disk-executor.js';

/**
 * Which files own the given bytes of an ext4 filesystem that starts at `offset` in `image`, by
 * debugfs (icheck → ncheck) on the image itself: no mount, no loop device. Blocks no inode owns
 * are filesystem metadata (superblocks, bitmaps, inode tables). At most `max` blocks are asked about.
 */
export async function ext4Owners(
  ex: DiskExecutor,
  image: string,
  offset: number,
  byteOffsets: number[],
  max = 512,
): Promise<{ paths: string[]; metadataBlocks: number; blockSize: number }> {
  const device = `${image}?offset=${offset}`;
  const stats = await ex.run(['debugfs', '-R', 'stats', device], { allowFailure: true, step: 'debugfs stats' });
  const blockSize = Number(/^Block size:\s+(\d+)/m.exec(stats.stdout)?.[1] ?? 4096);
  const blocks = [...new Set(byteOffsets.map((o) => Math.floor(o / blockSize)))].slice(0, max);
  if (!blocks.length) return { paths: [], metadataBlocks: 0, blockSize };
  const icheck = await ex.run(['debugfs', '-R', `icheck ${blocks.join(' ')}`, device], {
    allowFailure: true,
    step: 'debugfs icheck',
  });
  const inodes = new Set<string>();
  let metadataBlocks = 0;
  for (const line of icheck.stdout.split('\n').slice(1)) {
    const [, inode] = line.trim().split(/\s+/);
    if (!inode) continue;
    if (/^\d+$/.test(inode)) inodes.add(inode);
    else metadataBlocks++;
  }
  const special: Record<string, string> = { '7': '(resize inode)', '8': '(journal)' };
  const paths = [...inodes].filter((i) => special[i]).map((i) => special[i]);
  const regular = [...inodes].filter((i) => !special[i]);
  if (regular.length) {
    const ncheck = await ex.run(['debugfs', '-R', `ncheck ${regular.join(' ')}`, device], {
      allowFailure: true,
      step: 'debugfs ncheck',
    });
    for (const line of ncheck.stdout.split('\n').slice(1)) {
      const m = /^\s*\d+\s+(.+)$/.exec(line);
      if (m) paths.push(m[1]);
    }
  }
  return { paths: [...new Set(paths)].sort(), metadataBlocks, blockSize };
}
