import { pathToFileURL } from 'node:url';
import { ValidationError } from '../core/errors.js';
import { didYouMean } from '../core/suggest.js';
import { isObjectName, OBJECT_FIELDS } from '../objects/fields.js';
import type { DeclaredPlugin, PluginPackage } from './declaration.js';
import { discoverPluginPackages, type DiscoveryOptions } from './discovery.js';
import type { Namespace, Plugin } from './types.js';

/** The result of trying to import one declared plugin. */
export type LoadResult = { ok: true; plugin: Plugin } | { ok: false; reason: string };

/** Checks a module export against the plugin contract, in place (the object is returned as is). */
export function checkPluginShape(value: unknown): string | undefined {
  if (!value || typeof value !== 'object')
    return `export is ${value === null ? 'null' : typeof value}, expected a plugin object {summary, run}`;
  const p = value as Record<string, unknown>;
  if (typeof p.summary !== 'string' || p.summary.length === 0) return '"summary" must be a non-empty string';
  if (typeof p.run !== 'function') return '"run" must be a function';
  for (const hook of ['plan', 'validate'] as const) {
    if (p[hook] !== undefined && typeof p[hook] !== 'function') return `"${hook}" must be a function when present`;
  }
  if (p.options !== undefined && typeof (p.options as { safeParse?: unknown })?.safeParse !== 'function') {
    return '"options" must be a zod schema when present';
  }
  for (const list of ['reads', 'writes'] as const) {
    if (p[list] === undefined) continue;
    if (!Array.isArray(p[list])) return `"${list}" must be a list of object names`;
    const unknown = (p[list] as unknown[]).find((n) => typeof n !== 'string' || !isObjectName(n));
    if (unknown !== undefined)
      return `"${list}" names ${JSON.stringify(unknown)}, which is neither a field of the objects (${Object.keys(OBJECT_FIELDS).join(', ')}) nor a slot ("package/name")`;
  }
  if (p.pipelines !== undefined) {
    if (!p.pipelines || typeof p.pipelines !== 'object') return '"pipelines" must map pipeline names to places';
    for (const [name, place] of Object.entries(p.pipelines)) {
      const at = place as { after?: unknown; before?: unknown; applies?: unknown } | undefined;
      if (!at || typeof at !== 'object') return `"pipelines.${name}" must be {after?, before?, applies?}`;
      for (const k of ['after', 'before'] as const)
        if (at[k] !== undefined && !(Array.isArray(at[k]) && at[k].every((n) => typeof n === 'string')))
          return `"pipelines.${name}.${k}" must be a list of action names`;
      if (at.applies !== undefined && typeof at.applies !== 'function')
        return `"pipelines.${name}.applies" must be a function of the objects`;
    }
  }
  return undefined;
}

/**
 * Every declared plugin, by namespace and name. Modules are imported lazily on `load`, once; a
 * plugin that cannot load is recorded as broken and affects nothing but its own use.
 */
export class PluginRegistry {
  private readonly loaded = new Map<DeclaredPlugin, LoadResult>();

  constructor(readonly packages: PluginPackage[]) {}

  static async discover(opts?: DiscoveryOptions): Promise<PluginRegistry> {
    return new PluginRegistry(await discoverPluginPackages(opts));
  }

  get declared(): DeclaredPlugin[] {
    return this.packages.flatMap((p) => p.plugins);
  }

  names(namespace: Namespace): string[] {
    return [...new Set(this.declared.filter((d) => d.namespace === namespace).map((d) => d.name))].sort();
  }

  /** Imports one declaration; never throws. */
  async tryLoad(decl: DeclaredPlugin): Promise<LoadResult> {
    const cached = this.loaded.get(decl);
    if (cached) return cached;
    let result: LoadResult;
    if (decl.problem) result = { ok: false, reason: decl.problem };
    else {
      try {
        const mod = await import(pathToFileURL(decl.modulePath).href);
        if (!(decl.exportName in mod)) throw new Error(`module has no export "${decl.exportName}"`);
        const value = mod[decl.exportName];
        const problem = checkPluginShape(value);
        result = problem ? { ok: false, reason: `bad shape: ${problem}` } : { ok: true, plugin: value as Plugin };
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const reason =
          e.code === 'ERR_MODULE_NOT_FOUND'
            ? `module not found: ${decl.modulePath}`
            : `${e.name ?? 'Error'}: ${e.message ?? String(err)}`;
        result = { ok: false, reason };
      }
    }
    this.loaded.set(decl, result);
    return result;
  }

  /** Loads a plugin by name, or throws an error that says what is available or which packages clash. */
  async load(namespace: Namespace, name: string): Promise<Plugin> {
    const matches = this.declared.filter((d) => d.namespace === namespace && d.name === name);
    if (matches.length === 0) {
      const known = this.names(namespace);
      const guess = didYouMean(name, known);
      throw new ValidationError(`no ${namespace} plugin named "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}`, {
        hint: known.length ? `available: ${known.join(', ')}` : `no ${namespace} plugins are installed`,
      });
    }
    if (matches.length > 1) throw clashError(namespace, name, matches);
    const [decl] = matches;
    const result = await this.tryLoad(decl);
    if (!result.ok) {
      throw new ValidationError(
        `${namespace} plugin "${name}" from ${decl.packageName}@${decl.packageVersion} failed to load: ${result.reason}`,
        {
          hint: `module ${decl.modulePath}`,
        },
      );
    }
    return result.plugin;
  }

  /** Every name offered by more than one package in one namespace. */
  clashes(): { namespace: Namespace; name: string; plugins: DeclaredPlugin[] }[] {
    const byKey = new Map<string, DeclaredPlugin[]>();
    for (const d of this.declared) {
      const key = `${d.namespace}\0${d.name}`;
      byKey.set(key, [...(byKey.get(key) ?? []), d]);
    }
    return [...byKey.values()]
      .filter((v) => v.length > 1)
      .map((v) => ({ namespace: v[0].namespace, name: v[0].name, plugins: v }));
  }
}

export function clashError(namespace: Namespace, name: string, plugins: DeclaredPlugin[]): ValidationError {
  const who = plugins.map((p) => `${p.packageName}@${p.packageVersion} (${p.packageDir})`).join(' and ');
  return new ValidationError(`${namespace} plugin name "${name}" is declared by more than one package: ${who}`, {
    hint: 'uninstall one of them, or remove it from BAREON_PLUGIN_PATH',
  });
}
