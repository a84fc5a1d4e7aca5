import type { CleanupStack } from '../core/cleanup.js';
import { HostExecutor } from './executor.js';
import { undoable } from './mount.js';

/**
 * Attaches `size` bytes of `file` (an image file or a block device) from `offset` as a loop device,
 * detached by the cleanup stack. This is how partitions are reached where the kernel made no
 * partition nodes (no partition scan, no udev).
 */
export async function attachLoop(
  ex: HostExecutor,
  cleanup: CleanupStack,
  file: string,
  offset: number,
  size: number,
): Promise<string> {
  const before = await loopsAt(ex, file, offset);
  // a losetup stopped by Ctrl-C may still have attached, without telling which device: then the new
  // loops over the file at this offset are ours. Teardowns get an executor of their own, as the run's
  // is cancelled by then.
  const r = await undoable(
    cleanup,
    `detach the loop device over ${file} at offset ${offset}`,
    async (attached) => {
      const host = new HostExecutor();
      const dev = attached?.stdout.trim();
      const ours = dev ? [dev] : (await loopsAt(host, file, offset)).filter((d) => !before.includes(d));
      for (const d of ours) await detachLoop(host, d);
    },
    () =>
      ex.run(['losetup', '--find', '--show', '--offset', String(offset), '--sizelimit', String(size), file], {
        step: `attach ${file} at offset ${offset}`,
      }),
  ).done;
  return r.stdout.trim();
}

/** The loop devices over `file` that start at `offset`. */
async function loopsAt(ex: HostExecutor, file: string, offset: number): Promise<string[]> {
  const r = await ex.run(
    ['losetup', '--noheadings', '--output', 'NAME', '--associated', file, '--offset', String(offset)],
    { allowFailure: true },
  );
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Detaches a loop device, retrying while a just-killed writer still holds it. */
export async function detachLoop(ex: HostExecutor, dev: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await ex.run(['losetup', '--detach', dev], { allowFailure: true });
    if (r.exitCode === 0 || /No such device/.test(r.tail)) return;
    if (attempt >= 20) throw new Error(`losetup --detach ${dev}: ${r.tail}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}
