import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CleanupStack } from '../../src/core/cleanup.js';
import { runPlugins } from '../../src/plugins/manager.js';
import { ValidationError } from '../../src/core/errors.js';
import type { DeclaredPlugin, PluginPackage } from '../../src/plugins/declaration.js';
import { PluginRegistry } from '../../src/plugins/registry.js';
import type { Plugin } from '../../src/plugins/types.js';
import { Reporter } from '../../src/core/reporter.js';
import { BIN } from '../helpers/cli.js';
import { writePluginPackage } from '../helpers/plugin-package.js';

/** A registry whose plugins are in-memory objects (modules are faked by pre-seeding the load cache). */
function registryOf(plugins: Record<string, Plugin>): PluginRegistry {
  const pkg: PluginPackage = { name: 'test-pkg', version: '1.0.0', dir: '/test', source: 'path', plugins: [] };
  const registry = new PluginRegistry([pkg]);
  for (const [name, plugin] of Object.entries(plugins)) {
    const decl: DeclaredPlugin = {
      namespace: 'bareon.actions',
      name,
      packageName: pkg.name,
      packageVersion: pkg.version,
      packageDir: pkg.dir,
      source: 'path',
      modulePath: `/test/${name}.js`,
      exportName: 'default',
    };
    pkg.plugins.push(decl);
    (registry as unknown as { loaded: Map<DeclaredPlugin, unknown> }).loaded.set(decl, { ok: true, plugin });
  }
  return registry;
}

function request(registry: PluginRegistry, names: string[], objects: Record<string, unknown> = {}) {
  return {
    registry,
    queue: names.map((name) => ({ namespace: 'bareon.actions' as const, name })),
    objects: { artifacts: [], ...objects },
    flags: { dryRun: false, yes: false, noCache: false },
    signal: new AbortController().signal,
    cleanup: new CleanupStack(),
    runId: 'test',
    reporter: new Reporter('json', false, { write: () => true } as never),
  };
}

describe('the manager', () => {
  it('runs nothing when the third of three actions fails validation, and names the plugin and field', async () => {
    const ran: string[] = [];
    const ok = (name: string): Plugin => ({
      summary: name,
      validate() {},
      async run() {
        ran.push(name);
      },
    });
    const registry = registryOf({
      first: ok('first'),
      second: ok('second'),
      third: {
        summary: 'needs a layout',
        validate(objects) {
          if (!objects.layout) throw new ValidationError('layout.disks: required by this action');
        },
        async run() {
          ran.push('third');
        },
      },
    });
    const err = await runPlugins(request(registry, ['first', 'second', 'third'])).catch((e) => e);
    expect(ran).toEqual([]);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe('bareon.actions/third: layout.disks: required by this action');
  });

  it('reports a plugin option of the wrong type with the plugin and field, before any run', async () => {
    const ran: string[] = [];
    const registry = registryOf({
      a: {
        summary: 'a',
        async run() {
          ran.push('a');
        },
      },
      b: {
        summary: 'b',
        options: z.strictObject({ compress: z.boolean() }),
        async run() {
          ran.push('b');
        },
      },
    });
    const req = request(registry, ['a', 'b']);
    req.queue[1] = { ...req.queue[1], options: { compress: 'yes' }, origin: 'web.yaml outputs[1]' } as never;
    const err = await runPlugins(req).catch((e) => e);
    expect(ran).toEqual([]);
    expect(err.message).toMatch(
      /^bareon\.actions\/b: web\.yaml outputs\[1\] options: compress: expected boolean, got string/,
    );
  });

  it('lets one action change the shared objects in plan, and another see it in validate', async () => {
    const seen: unknown[] = [];
    const registry = registryOf({
      configdrive: {
        summary: 'reserves a partition',
        plan(objects, queue) {
          if (queue.some((q) => q.name === 'partitioning')) objects.reserved = [{ type: 'configdrive', size: '64MiB' }];
        },
        async run() {},
      },
      partitioning: {
        summary: 'lays out',
        validate(objects) {
          seen.push(objects.reserved);
        },
        async run() {},
      },
    });
    await runPlugins(request(registry, ['partitioning', 'configdrive']));
    expect(seen).toEqual([[{ type: 'configdrive', size: '64MiB' }]]);
  });

  it('drains the cleanup stack in reverse order after a failed run', async () => {
    const order: string[] = [];
    const registry = registryOf({
      failing: {
        summary: 'fails after deferring',
        async run(ctx) {
          ctx.cleanup.defer(() => order.push('first'));
          ctx.cleanup.defer(() => order.push('second'));
          throw new Error('boom');
        },
      },
    });
    await expect(runPlugins(request(registry, ['failing']))).rejects.toThrow('boom');
    expect(order).toEqual(['second', 'first']);
  });

  it('prints the plan on --dry-run without running anything', async () => {
    let ran = false;
    const lines: string[] = [];
    const registry = registryOf({
      write: {
        summary: 'w',
        async run() {
          ran = true;
        },
      },
    });
    const req = {
      ...request(registry, ['write']),
      flags: { dryRun: true, yes: false, noCache: false },
      reporter: new Reporter('text', false, { write: (s: string) => lines.push(s) } as never),
    };
    await runPlugins(req);
    expect(ran).toBe(false);
    expect(lines.join('')).toContain('1. bareon.actions/write');
  });
});

describe('interrupting a run', () => {
  it('runs the deferred cleanups in reverse order on SIGINT and exits 130', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-sigint-'));
    const log = path.join(dir, 'cleanup.log');
    const pkg = await writePluginPackage({
      name: 'bareon-plugin-sleepy',
      entryPoints: { 'bareon.actions': { sleepy: './sleepy.js' } },
      modules: {
        'sleepy.js': `
import { appendFileSync } from 'node:fs';
export default {
  summary: 'waits forever',
  async run(ctx) {
    for (const n of ['one', 'two', 'three']) ctx.cleanup.defer(() => appendFileSync(process.env.CLEANUP_LOG, n + '\\n'));
    process.stdout.write('READY\\n');
    await new Promise(() => {});
  },
};`,
      },
    });
    await writeFile(log, '');
    const child = execa(process.execPath, [BIN.bareon, 'run', 'sleepy', '--log-format', 'json'], {
      reject: false,
      env: { BAREON_PLUGIN_PATH: pkg, CLEANUP_LOG: log },
    });
    await new Promise<void>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve()),
    );
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(130);
    expect(await readFile(log, 'utf8')).toBe('three\ntwo\none\n');
  });

  it('lets a run that has finished release what it held, and exits 0, when SIGINT comes during that', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-sigint-'));
    const log = path.join(dir, 'cleanup.log');
    const pkg = await writePluginPackage({
      name: 'bareon-plugin-done',
      entryPoints: { 'bareon.actions': { done: './done.js' } },
      modules: {
        'done.js': `
import { appendFileSync } from 'node:fs';
export default {
  summary: 'finishes, then takes a while to let go',
  async run(ctx) {
    ctx.cleanup.deferOnFailure(() => appendFileSync(process.env.CLEANUP_LOG, 'cleared the half-written disk\\n'), 'clear');
    ctx.cleanup.defer(async () => {
      process.stdout.write('RELEASING\\n');
      await new Promise((r) => setTimeout(r, 500));
      appendFileSync(process.env.CLEANUP_LOG, 'unmounted\\n');
    }, 'unmount');
  },
};`,
      },
    });
    await writeFile(log, '');
    const child = execa(process.execPath, [BIN.bareon, 'run', 'done', '--log-format', 'json'], {
      reject: false,
      env: { BAREON_PLUGIN_PATH: pkg, CLEANUP_LOG: log },
    });
    await new Promise<void>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('RELEASING') && resolve()),
    );
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/SIGINT: the run has finished; releasing what it held/);
    expect(await readFile(log, 'utf8')).toBe('unmounted\n');
  });

  it('exits at once on a second signal, naming the teardowns it leaves undone', async () => {
    const pkg = await writePluginPackage({
      name: 'bareon-plugin-stuck',
      entryPoints: { 'bareon.actions': { stuck: './stuck.js' } },
      modules: {
        'stuck.js': `
export default {
  summary: 'a teardown that hangs',
  async run(ctx) {
    ctx.cleanup.defer(() => {}, 'remove toolbox container 0123abcd');
    ctx.cleanup.defer(() => new Promise(() => {}), 'unmount /tmp/root');
    process.stdout.write('READY\\n');
    await new Promise(() => {});
  },
};`,
      },
    });
    const child = execa(process.execPath, [BIN.bareon, 'run', 'stuck', '--log-format', 'json'], {
      reject: false,
      env: { BAREON_PLUGIN_PATH: pkg },
    });
    await new Promise<void>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve()),
    );
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(130);
    expect(result.stderr).toMatch(
      /SIGTERM again: exiting before the cleanup finished; left undone: unmount \/tmp\/root; remove toolbox container 0123abcd \(bareon gc/,
    );
  });
});
