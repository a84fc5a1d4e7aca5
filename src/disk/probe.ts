import type { DiskExecutor } from '../core/disk-executor.js';

/**
 * What blkid finds at `offset` of a disk or image file (TYPE, UUID, LABEL…), probed without a
 * kernel partition node, which ramdisks and image files often lack. Empty when nothing is there.
 */
export async function probeAt(ex: DiskExecutor, disk: string, offset: number): Promise<Record<string, string>> {
  const r = await ex.run(['blkid', '-p', '-O', String(offset), '-o', 'export', disk], { allowFailure: true });
  if (r.exitCode !== 0) return {};
  return Object.fromEntries(
    r.stdout
      .split('\n')
      .flatMap((l) => (l.includes('=') ? [[l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]] : [])),
  );
}
