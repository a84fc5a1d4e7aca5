import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { API_VERSION, NAMESPACES, type Namespace } from './types.js';

/** Where a plugin package was found. */
export type PluginSource = 'builtin' | 'project' | 'global' | 'path';

/** One entry point declared in a package.json, not yet imported. */
export interface DeclaredPlugin {
  namespace: Namespace;
  name: string;
  packageName: string;
  packageVersion: string;
  packageDir: string;
  source: PluginSource;
  /** Absolute path of the module file. */
  modulePath: string;
  /** Named export, or "default". */
  exportName: string;
  /** Set when the declaration itself is unusable (bad apiVersion, unknown namespace). */
  problem?: string;
}

export interface PluginPackage {
  name: string;
  version: string;
  dir: string;
  source: PluginSource;
  plugins: DeclaredPlugin[];
}

/**
 * Reads `dir/package.json` and returns its plugin declarations, or undefined when the package
 * declares none. Only JSON is read: nothing is imported here.
 */
export async function readPluginPackage(dir: string, source: PluginSource): Promise<PluginPackage | undefined> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const field = json.bareon as { apiVersion?: unknown; entryPoints?: unknown } | undefined;
  if (!field || typeof field !== 'object') return undefined;
  const pkg: PluginPackage = {
    name: typeof json.name === 'string' ? json.name : path.basename(dir),
    version: typeof json.version === 'string' ? json.version : '0.0.0',
    dir,
    source,
    plugins: [],
  };
  const apiProblem =
    field.apiVersion === API_VERSION
      ? undefined
      : `declares bareon apiVersion ${JSON.stringify(field.apiVersion)}, this bareon supports ${API_VERSION}`;
  const entryPoints = (field.entryPoints ?? {}) as Record<string, unknown>;
  for (const [namespace, plugins] of Object.entries(entryPoints)) {
    if (!plugins || typeof plugins !== 'object') continue;
    for (const [name, ref] of Object.entries(plugins as Record<string, unknown>)) {
      const [file, exportName] = String(ref).split('#');
      pkg.plugins.push({
        namespace: namespace as Namespace,
        name,
        packageName: pkg.name,
        packageVersion: pkg.version,
        packageDir: dir,
        source,
        modulePath: path.resolve(dir, file),
        exportName: exportName || 'default',
        problem:
          apiProblem ??
          (NAMESPACES.includes(namespace as Namespace)
            ? undefined
            : `unknown namespace "${namespace}" (known: ${NAMESPACES.join(', ')})`) ??
          (typeof ref === 'string' ? undefined : 'entry point must be a string "./file.js" or "./file.js#export"'),
      });
    }
  }
  return pkg;
}
