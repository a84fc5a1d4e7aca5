import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadLayout, type Objects } from '../../src/objects/index.js';
import type { DeclaredPlugin } from '../../src/plugins/declaration.js';
import { resolvePipeline } from '../../src/plugins/pipeline.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { Plugin } from '../../src/plugins/types.js';
import { REPO } from '../helpers/cli.js';

/** bareon's own actions (from dist), plus in-memory actions of an out-of-tree package. */
async function registryWith(extra: Record<string, Plugin>): Promise<PluginRegistry> {
  const registry = await PluginRegistry.discover({ cwd: '/', env: {} });
  const plugins: DeclaredPlugin[] = Object.keys(extra).map((name) => ({
    namespace: 'bareon.actions',
    name,
    packageName: 'bareon-plugin-extra',
    packageVersion: '1.0.0',
    packageDir: '/extra',
    source: 'path',
    modulePath: `/extra/${name}.js`,
    exportName: 'default',
  }));
  registry.packages.push({ name: 'bareon-plugin-extra', version: '1.0.0', dir: '/extra', source: 'path', plugins });
  const cache = (registry as unknown as { loaded: Map<DeclaredPlugin, unknown> }).loaded;
  for (const decl of plugins) cache.set(decl, { ok: true, plugin: extra[decl.name] });
  return registry;
}

const action = (pipelines: Plugin['pipelines']): Plugin => ({ summary: 'test action', pipelines, async run() {} });
const names = (q: { name: string }[]) => q.map((e) => e.name);
const source = (content: 'disk' | 'rootfs') => ({ content }) as NonNullable<Objects['source']>;

let plain: Objects;
let storage: Objects;
beforeAll(async () => {
  plain = {
    artifacts: [],
    layout: await loadLayout(path.join(REPO, 'profiles/layouts/bios-uefi-gpt.yaml')),
    source: source('rootfs'),
  };
  storage = {
    artifacts: [],
    layout: await loadLayout(path.join(REPO, 'test/fixtures/layouts/raid1-lvm.yaml')),
    source: source('rootfs'),
  };
});

describe('pipelines declared by the actions', () => {
  it("resolve to bareon's chains: deploy by layout and source, image, build", async () => {
    const registry = await registryWith({});
    expect(names(await resolvePipeline(registry, 'deploy', plain))).toEqual([
      'partitioning',
      'filesystems',
      'deploy',
      'fstab',
      'bootloader',
    ]);
    expect(names(await resolvePipeline(registry, 'deploy', storage))).toEqual([
      'partitioning',
      'raid',
      'lvm',
      'filesystems',
      'deploy',
      'fstab',
      'initramfs',
      'bootloader',
    ]);
    expect(names(await resolvePipeline(registry, 'deploy', { artifacts: [], source: source('disk') }))).toEqual([
      'deploy',
    ]);
    const withDrive = { ...plain, configDrive: {} as NonNullable<Objects['configDrive']> };
    expect(names(await resolvePipeline(registry, 'deploy', withDrive)).at(-1)).toBe('configdrive');
    expect(names(await resolvePipeline(registry, 'image', plain))).toEqual([
      'partitioning',
      'fstab',
      'bootloader',
      'filesystems',
    ]);
    expect(
      names(
        await resolvePipeline(registry, 'image', { ...plain, layout: { ...plain.layout!, bootloader: undefined } }),
      ),
    ).toEqual(['partitioning', 'fstab', 'filesystems']);
    expect(names(await resolvePipeline(registry, 'build', plain))).toEqual(['sbom', 'manifest']);
  });

  it('place an out-of-tree action by its after/before, only when a run names it, with where it came from', async () => {
    const registry = await registryWith({ stamp: action({ deploy: { after: ['deploy'], before: ['fstab'] } }) });
    expect(names(await resolvePipeline(registry, 'deploy', plain))).not.toContain('stamp');
    const q = await resolvePipeline(registry, 'deploy', plain, { with: [{ name: 'stamp', origin: '--with' }] });
    expect(names(q)).toEqual(['partitioning', 'filesystems', 'deploy', 'stamp', 'fstab', 'bootloader']);
    expect(q.find((e) => e.name === 'stamp')?.origin).toBe('--with');
    expect(q[0].from).toBe('deploy pipeline');
  });

  it('refuse an unknown name, an action with no place in the pipeline, and a cycle, naming what to fix', async () => {
    const registry = await registryWith({
      elsewhere: action({ image: {} }),
      first: action({ deploy: { after: ['second'] } }),
      second: action({ deploy: { after: ['first'] } }),
    });
    const run = (name: string) =>
      resolvePipeline(registry, 'deploy', plain, { with: [{ name, origin: 'layout.yaml with[0]' }] });
    await expect(run('nope')).rejects.toThrow(/layout\.yaml with\[0\]: no bareon\.actions plugin named "nope"/);
    await expect(run('nope')).rejects.toMatchObject({
      hint: expect.stringMatching(/can join the deploy pipeline: .*bootloader.*first/),
    });
    await expect(run('elsewhere')).rejects.toThrow(/action "elsewhere" declares no place in the deploy pipeline/);
    await expect(
      resolvePipeline(registry, 'deploy', plain, {
        with: [
          { name: 'first', origin: '--with' },
          { name: 'second', origin: '--with' },
        ],
      }),
    ).rejects.toThrow(/the deploy pipeline has no order: (first → second → first|second → first → second)/);
  });
});

describe('what a plugin declares about its place and data', () => {
  it('is checked when it loads: a typo in reads or writes, or a malformed place, is named', async () => {
    const { checkPluginShape } = await import('../../src/plugins/registry.js');
    const run = async () => {};
    expect(checkPluginShape({ summary: 's', run, reads: ['layout', 'disks', 'pkg/slot'], writes: ['artifacts'] })).toBe(
      undefined,
    );
    expect(checkPluginShape({ summary: 's', run, reads: ['layuot'] })).toMatch(
      /"reads" names "layuot", which is neither a field of the objects \(profile, .*layout.*\) nor a slot/,
    );
    expect(checkPluginShape({ summary: 's', run, writes: 'disks' })).toMatch(/"writes" must be a list/);
    expect(checkPluginShape({ summary: 's', run, pipelines: { deploy: { after: 'deploy' } } })).toMatch(
      /"pipelines\.deploy\.after" must be a list of action names/,
    );
    expect(checkPluginShape({ summary: 's', run, pipelines: { deploy: { applies: true } } })).toMatch(
      /"pipelines\.deploy\.applies" must be a function/,
    );
  });
});
