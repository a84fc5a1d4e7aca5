import { existsSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { bareonPackageDir } from '../core/version.js';
import { readPluginPackage, type PluginPackage, type PluginSource } from './declaration.js';

function nearestPackageDir(from: string): string | undefined {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Node's lookup of a dependency: node_modules of the project dir, then of each parent. */
function resolveDependencyDir(projectDir: string, dep: string): string | undefined {
  for (let dir = projectDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', dep);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** The global node_modules of the running node (npm's default prefix layout, or $npm_config_prefix). */
export function globalNodeModulesDir(env: NodeJS.ProcessEnv = process.env): string {
  const prefix = env.npm_config_prefix ?? env.NPM_CONFIG_PREFIX ?? path.dirname(path.dirname(process.execPath));
  return path.join(prefix, 'lib', 'node_modules');
}

async function listPackageDirs(nodeModules: string): Promise<string[]> {
  const dirs: string[] = [];
  let names: string[];
  try {
    names = await readdir(nodeModules);
  } catch {
    return dirs;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    if (name.startsWith('@')) {
      const scoped = await readdir(path.join(nodeModules, name)).catch(() => [] as string[]);
      dirs.push(...scoped.map((s) => path.join(nodeModules, name, s)));
    } else dirs.push(path.join(nodeModules, name));
  }
  return dirs;
}

export interface DiscoveryOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra package directories, e.g. a profile's `plugins:` list. */
  extraDirs?: string[];
}

/**
 * Finds every package that declares bareon plugins: bareon itself, the dependencies of the nearest
 * package.json above `cwd`, the global node_modules, and each directory in BAREON_PLUGIN_PATH.
 * A package reached twice (by real path) is read once, at its first source.
 */
export async function discoverPluginPackages(opts: DiscoveryOptions = {}): Promise<PluginPackage[]> {
  const env = opts.env ?? process.env;
  const candidates: { dir: string; source: PluginSource }[] = [{ dir: bareonPackageDir(), source: 'builtin' }];

  const projectDir = nearestPackageDir(opts.cwd ?? process.cwd());
  if (projectDir) {
    try {
      const json = JSON.parse(await readFile(path.join(projectDir, 'package.json'), 'utf8'));
      const deps = Object.keys({ ...json.dependencies, ...json.devDependencies });
      for (const dep of deps) {
        const dir = resolveDependencyDir(projectDir, dep);
        if (dir) candidates.push({ dir, source: 'project' });
      }
    } catch {
      /* an unreadable package.json declares no plugins */
    }
  }
  for (const dir of await listPackageDirs(globalNodeModulesDir(env))) candidates.push({ dir, source: 'global' });
  for (const dir of (env.BAREON_PLUGIN_PATH ?? '').split(':').filter(Boolean))
    candidates.push({ dir: path.resolve(dir), source: 'path' });
  for (const dir of opts.extraDirs ?? []) candidates.push({ dir: path.resolve(dir), source: 'path' });

  const seen = new Set<string>();
  const packages: PluginPackage[] = [];
  for (const { dir, source } of candidates) {
    const real = await realpath(dir).catch(() => dir);
    if (seen.has(real)) continue;
    seen.add(real);
    const pkg = await readPluginPackage(real, source);
    if (pkg) packages.push(pkg);
  }
  return packages;
}
