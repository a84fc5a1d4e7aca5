import { execa } from 'execa';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

/**
 * The import rules of .dependency-cruiser.cjs: in-tree plugins use only bareon's public subpaths, and
 * src/'s folders are layers. They hold on this tree, and they fire when broken.
 */
const cruise = (cwd: string) =>
  execa(
    path.join(REPO, 'node_modules/.bin/depcruise'),
    ['src', 'actions', 'builders', '--config', '.dependency-cruiser.cjs'],
    { cwd, reject: false, all: true },
  );

let copy: string | undefined;
afterAll(async () => {
  if (copy) await rm(copy, { recursive: true, force: true });
});

describe('import rules', () => {
  it('hold on this tree', async () => {
    const r = await cruise(REPO);
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(/no dependency violations found/);
  });

  it('fire on a plugin importing an internal module, and on an import cycle between folders', async () => {
    copy = await mkdtemp(path.join(tmpdir(), 'bareon-rules-'));
    for (const entry of ['src', 'actions', 'builders', 'package.json', 'tsconfig.json', '.dependency-cruiser.cjs'])
      await cp(path.join(REPO, entry), path.join(copy, entry), { recursive: true });
    for (const entry of ['dist', 'node_modules']) await symlink(path.join(REPO, entry), path.join(copy, entry));
    await writeFile(
      path.join(copy, 'actions/leaky.ts'),
      "import { HostExecutor } from '../src/host/executor.js';\nexport const ex = new HostExecutor();\n",
    );
    // core is the bottom layer; disk imports core, so this closes a cycle between the two folders
    await writeFile(
      path.join(copy, 'src/core/leaky.ts'),
      "import { SECTOR } from '../disk/geometry.js';\nexport const sector = SECTOR;\n",
    );
    const r = await cruise(copy);
    expect(r.exitCode).not.toBe(0);
    expect(r.all).toMatch(/error plugin-uses-internal-module: actions\/leaky\.ts → src\/host\/executor\.ts/);
    expect(r.all).toMatch(/error layer-core: src\/core\/leaky\.ts → src\/disk\/geometry\.ts/);
    expect(r.all).toMatch(/2 dependency violations/);
  });
});
