import { lstat, mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CleanupStack } from '../core/cleanup.js';
import { HostExecutor } from './executor.js';
import { RootPathError } from './in-root.js';

/**
 * A new, empty directory under the system temp dir, removed by the cleanup stack. A mount point is
 * removed only if empty, so that a mount that failed to go away never has its files deleted.
 */
export async function tempDir(
  cleanup: CleanupStack,
  prefix: string,
  opts: { mountPoint?: boolean } = {},
): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `bareon-${prefix}-`));
  cleanup.defer(() => (opts.mountPoint ? rmdir(dir) : rm(dir, { recursive: true, force: true })), `remove ${dir}`);
  return dir;
}

/** Mounts `dev` on `dir` (which must exist), unmounted by the cleanup stack. */
export async function mountDevice(
  ex: HostExecutor,
  cleanup: CleanupStack,
  dev: string,
  dir: string,
  fsType?: string,
): Promise<void> {
  await undoable(
    cleanup,
    `unmount ${dir}`,
    () => unmount(new HostExecutor(), dir),
    () => ex.run(['mount', ...(fsType ? ['-t', fsType] : []), dev, dir], { step: `mount ${dev} on ${dir}` }),
  ).done;
}

/**
 * Runs `act` with its teardown `undo` registered first: a tool stopped by Ctrl-C (mount, losetup)
 * may still have done its work, and a teardown that ran while it was in flight would find nothing to
 * undo. So `undo` waits for `act` to end, then undoes; it gets act's result, or undefined when act
 * failed or was stopped. Returns the teardown, to run it early.
 */
export function undoable<T>(
  cleanup: CleanupStack,
  label: string,
  undo: (result: T | undefined) => Promise<unknown>,
  act: () => Promise<T>,
): { done: Promise<T>; undo: () => Promise<void> } {
  let acting: Promise<T> | undefined;
  const early = cleanup.defer(async () => {
    await undo(await acting?.catch(() => undefined));
  }, label);
  acting = act();
  return { done: acting, undo: early };
}

/** Unmounts `dir`, retrying while a just-killed writer still holds files open; lazily as a last resort. */
export async function unmount(ex: HostExecutor, dir: string): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = await ex.run(['umount', dir], { allowFailure: true });
    if (r.exitCode === 0 || /not mounted/.test(r.tail)) return;
    await new Promise((res) => setTimeout(res, 250));
  }
  await ex.run(['umount', '--lazy', dir], { step: `unmount ${dir}` });
}

/** `root/name`, made when missing; anything but a real directory there (a link, a file) is refused. */
async function realDirUnder(root: string, name: string): Promise<string> {
  const where = path.join(root, name);
  const st = await lstat(where).catch(() => undefined);
  if (!st) await mkdir(where);
  else if (!st.isDirectory()) {
    throw new RootPathError(
      `the deployed root's /${name} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}; bareon binds this machine's /${name} only onto a real directory`,
      {
        hint: `make /${name} a directory in the image`,
      },
    );
  }
  return where;
}

/**
 * Makes `root` a working chroot for tools such as update-initramfs: /dev, /proc, /sys and /run of
 * this machine bound in. Returns a function that unmounts them (also registered for cleanup).
 */
export async function bindSystemDirs(
  ex: HostExecutor,
  cleanup: CleanupStack,
  root: string,
): Promise<() => Promise<void>> {
  const undo: (() => Promise<void>)[] = [];
  // all four checked before any is mounted: a link among them would lead the next ones through a mount of this machine's
  const points: string[] = [];
  for (const dir of ['dev', 'proc', 'sys', 'run']) points.push(await realDirUnder(root, dir));
  for (const [i, dir] of ['dev', 'proc', 'sys', 'run'].entries()) {
    const where = points[i];
    const bound = undoable(
      cleanup,
      `unmount ${where}`,
      () => unmount(new HostExecutor(), where),
      () => ex.run(['mount', '--bind', `/${dir}`, where], { step: `bind /${dir} into ${root}` }),
    );
    undo.unshift(bound.undo);
    await bound.done;
  }
  return async () => {
    for (const u of undo) await u();
  };
}
