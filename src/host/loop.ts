import type { CleanupStack } from '../core/cleanup.js';
import { HostExecutor } from './executor.js';

/**
 * Attaches `size` bytes of `file` (an image file or a block device) from `offset` as a loop device,
 * detached by the cleanup stack. This is how partitions are reached where the kernel made no
 * partition nodes (no partition scan, no udev).
 */
export async function attachLoop(ex: HostExecutor, cleanup: CleanupStack, file: string, offset: number, size: number): Promise<string> {
  const r = await ex.run(['losetup', '--find', '--show', '--offset', String(offset), '--sizelimit', String(size), file], { step: `attach ${file} at offset ${offset}` });
  const dev = r.stdout.trim();
  // teardowns get an executor of their own: the run's may be cancelled by then
  cleanup.defer(() => detachLoop(new HostExecutor(), dev), `detach ${dev}`);
  return dev;
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
