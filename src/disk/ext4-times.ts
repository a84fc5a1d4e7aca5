import type { DiskExecutor } from '../core/disk-executor.js';

/**
 * The inodes of an ext4 filesystem that were ever handed out, from `debugfs -R stats`: in each group,
 * those below its "unused inodes" high-water mark. A fresh `mkfs -d` fills each group from its start.
 */
export function initializedInodes(stats: string): { first: number; last: number }[] {
  const perGroup = Number(/^Inodes per group:\s+(\d+)/m.exec(stats)?.[1]);
  if (!perGroup) throw new Error('debugfs stats: no "Inodes per group" line');
  const ranges: { first: number; last: number }[] = [];
  for (const m of stats.matchAll(
    /^\s*Group\s+(\d+):[^\n]*\n\s*\d+ free blocks, \d+ free inodes, \d+ used directories, (\d+) unused inodes/gm,
  )) {
    const group = Number(m[1]);
    const used = perGroup - Number(m[2]);
    if (used > 0) ranges.push({ first: group * perGroup + 1, last: group * perGroup + used });
  }
  return ranges;
}

/** A debugfs script that sets the change time of every handed-out inode, and the last write time, to `epoch`. */
export function ctimeScript(stats: string, epoch: number): string {
  const lines: string[] = [];
  for (const { first, last } of initializedInodes(stats))
    for (let i = first; i <= last; i++) lines.push(`sif <${i}> ctime @${epoch}`);
  lines.push(`ssv wtime @${epoch}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Makes an ext4 filesystem's inode change times the epoch's. mke2fs -d copies each ctime from the
 * tree it fills from, and the kernel stamps those with the time they were written, so they are the
 * only inode times SOURCE_DATE_EPOCH (E2FSPROGS_FAKE_TIME for creation times, clamped mtimes and
 * atimes in the tree) cannot reach. `device` may carry debugfs's "?offset=N".
 */
export async function clampExt4Ctimes(ex: DiskExecutor, device: string, epoch: number): Promise<number> {
  const stats = await ex.run(['debugfs', '-R', 'stats', device], { step: 'debugfs stats' });
  const script = ctimeScript(stats.stdout, epoch);
  // with the fake time, debugfs stamps the superblock it writes back with the epoch too
  await ex.run(['env', `E2FSPROGS_FAKE_TIME=${epoch}`, 'debugfs', '-w', '-f', '-', device], {
    step: 'debugfs: set inode change times to SOURCE_DATE_EPOCH',
    input: script,
  });
  return script.split('\n').length - 2;
}

/** Shell commands that clamp the mtimes and atimes of a tree to `epoch` (what mke2fs -d then copies). */
export function clampTreeTimesCommands(dir: string, epoch: number): string[][] {
  return [
    ['find', dir, '-newermt', `@${epoch}`, '-exec', 'touch', '-h', '-m', '-d', `@${epoch}`, '{}', '+'],
    ['find', dir, '-newerat', `@${epoch}`, '-exec', 'touch', '-h', '-a', '-d', `@${epoch}`, '{}', '+'],
  ];
}
