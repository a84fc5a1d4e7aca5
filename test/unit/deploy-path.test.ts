import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

/** Every module reachable from `entry` through relative static and dynamic imports (compiled JS). */
async function reachable(entry: string, seen = new Set<string>()): Promise<Set<string>> {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const code = await readFile(entry, 'utf8');
  for (const m of code.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    await reachable(path.resolve(path.dirname(entry), m[1]), seen);
  }
  return seen;
}

describe('the deploy path', () => {
  it('imports no module of the Docker adapter, so bareon-deploy runs where only the kernel and disk tools exist', async () => {
    const dist = path.join(REPO, 'dist');
    const entries = [
      'src/cli/bareon-deploy.js',
      'src/cli/commands/deploy.js',
      ...['partitioning', 'filesystems', 'deploy', 'fstab', 'bootloader'].map((a) => `actions/${a}.js`),
      ...['disk-image', 'rootfs-tar', 'fs-image'].map((d) => `actions/deployers/${d}.js`),
    ];
    const modules = new Set<string>();
    for (const e of entries) for (const m of await reachable(path.join(dist, e))) modules.add(path.relative(dist, m));
    expect(modules.size).toBeGreaterThan(20);
    expect(
      [...modules].filter((m) => m.startsWith('src/docker/') || m.includes('toolbox') || m.includes('image-workspace')),
    ).toEqual([]);
    const code = await Promise.all([...modules].map((m) => readFile(path.join(dist, m), 'utf8')));
    expect(code.filter((c) => /from ['"]dockerode['"]/.test(c))).toEqual([]);
  });
});

/** The packages every module reachable from `entry` by static imports names (bareon's subpaths followed into dist). */
async function staticPackages(entry: string, dist: string, seen = new Set<string>(), found = new Set<string>()) {
  if (seen.has(entry)) return found;
  seen.add(entry);
  const code = await readFile(entry, 'utf8');
  for (const m of code.matchAll(/^(?:import|export)\s+(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) {
    const spec = m[1];
    if (spec.startsWith('.')) await staticPackages(path.resolve(path.dirname(entry), spec), dist, seen, found);
    else if (spec === 'bareon' || spec.startsWith('bareon/')) {
      const sub = spec === 'bareon' ? 'index' : `api/${spec.slice('bareon/'.length)}`;
      await staticPackages(path.join(dist, 'src', `${sub}.js`), dist, seen, found);
    } else if (!spec.startsWith('node:')) found.add(spec);
  }
  return found;
}

describe("bareon-deploy's start", () => {
  it('loads no schema library, YAML parser, tar or process runner before a run needs one', async () => {
    // a whole-disk deploy loads the command, bareon/plugin, bareon/disk, bareon/stream and every
    // in-tree action (for its pipelines); zod, yaml, execa, tar-stream and listr2 load on first use
    const dist = path.join(REPO, 'dist');
    const actions = [
      'bootloader',
      'configdrive',
      'deploy',
      'filesystems',
      'fstab',
      'initramfs',
      'lvm',
      'manifest',
      'sbom',
    ];
    const entries = [
      'src/cli/bareon-deploy.js',
      'src/cli/commands/deploy.js',
      ...[...actions, 'partitioning', 'raid'].map((a) => `actions/${a}.js`),
      'actions/deployers/disk-image.js',
      'actions/deployers/fs-image.js',
    ];
    const found = new Set<string>();
    for (const e of entries) for (const p of await staticPackages(path.join(dist, e), dist)) found.add(p);
    expect([...found].sort()).toEqual(['commander']);
  });
});
