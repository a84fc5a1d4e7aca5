import path from 'node:path';
import type { DiskTarget } from '../objects/index.js';
import {
  assertPlainTree,
  readdirInRoot,
  readFileInRoot,
  resolveInRoot,
  writeFileInRoot,
  type InRootOptions,
} from './in-root.js';

/**
 * The root tree of a target, for plugins that write files into it. On a deploy target every path is
 * resolved beneath the mounted root (see resolveInRoot): a symlink in the deployed image never leads
 * a write, a read or a copy out onto this machine. An image build's staged tree lives in the toolbox
 * container and is reached through its executor as it is.
 */
export interface RootTree {
  /** The root directory, as the target's executor sees it. */
  dir: string;
  /** `rel` resolved beneath the root, as the executor sees it; `mkdir: 'all'` creates it as a directory. */
  path(rel: string, opts?: InRootOptions): Promise<string>;
  writeFile(rel: string, data: Buffer, mode?: number): Promise<void>;
  readFile(rel: string): Promise<Buffer>;
  /** The names in a directory of the tree; [] when there is none. */
  readdir(rel: string): Promise<string[]>;
  /** The directory `rel` resolved, refused when it holds symlinks or device nodes that host tools would read through. */
  plainDir(rel: string, what: string): Promise<string>;
}

/** The root tree of `target` (mounting a deploy's filesystems on first use). */
export async function rootTree(target: DiskTarget): Promise<RootTree> {
  const dir = await target.rootDir();
  if (target.kind === 'image') {
    const ex = target.executor;
    const at = (rel: string) => path.posix.join(dir, rel);
    return {
      dir,
      async path(rel, opts) {
        if (opts?.mkdir) await ex.run(['mkdir', '-p', opts.mkdir === 'all' ? at(rel) : path.posix.dirname(at(rel))]);
        return at(rel);
      },
      writeFile: (rel, data, mode) => ex.writeFile(at(rel), data, mode),
      readFile: (rel) => ex.readFile(at(rel)),
      readdir: async (rel) =>
        (await ex.run(['ls', '-1A', at(rel)], { allowFailure: true })).stdout.split('\n').filter(Boolean),
      plainDir: async (rel) => at(rel),
    };
  }
  return {
    dir,
    path: (rel, opts) => resolveInRoot(dir, rel, opts),
    writeFile: (rel, data, mode) => writeFileInRoot(dir, rel, data, mode),
    readFile: (rel) => readFileInRoot(dir, rel),
    readdir: (rel) => readdirInRoot(dir, rel),
    async plainDir(rel, what) {
      const resolved = await resolveInRoot(dir, rel);
      await assertPlainTree(resolved, what);
      return resolved;
    },
  };
}
