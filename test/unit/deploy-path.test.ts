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
