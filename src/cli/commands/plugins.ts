import type { DeclaredPlugin } from '../../plugins/declaration.js';
import type { PluginRegistry } from '../../plugins/registry.js';
import { NAMESPACES, type Namespace, type Plugin } from '../../plugins/types.js';
import { ValidationError } from '../../core/errors.js';

export interface PluginRow {
  namespace: Namespace;
  name: string;
  package: string;
  version: string;
  source: DeclaredPlugin['source'];
  path: string;
  status: 'ok' | 'broken' | 'clash';
  summary?: string;
  reason?: string;
  /** The pipelines it joins: after/before, and whether it decides per run (applies). */
  pipelines?: Record<string, { after: string[]; before: string[]; conditional: boolean }>;
  /** The shared objects it reads and writes (fields and slots). */
  reads?: string[];
  writes?: string[];
}

/** Imports every declared plugin (this command is the one place that loads them all) and reports each. */
export async function listPlugins(registry: PluginRegistry, namespace?: string): Promise<PluginRow[]> {
  if (namespace && !NAMESPACES.includes(namespace as Namespace)) {
    throw new ValidationError(`unknown namespace "${namespace}"`, { hint: `use one of ${NAMESPACES.join(', ')}` });
  }
  const clashing = new Map(registry.clashes().flatMap((c) => c.plugins.map((p) => [p, c.plugins] as const)));
  const rows: PluginRow[] = [];
  for (const decl of registry.declared) {
    if (namespace && decl.namespace !== namespace) continue;
    const loaded = await registry.tryLoad(decl);
    const others = clashing.get(decl)?.filter((p) => p !== decl);
    rows.push({
      namespace: decl.namespace,
      name: decl.name,
      package: decl.packageName,
      version: decl.packageVersion,
      source: decl.source,
      path: decl.modulePath,
      status: others ? 'clash' : loaded.ok ? 'ok' : 'broken',
      summary: loaded.ok ? loaded.plugin.summary : undefined,
      ...(loaded.ok ? contract(loaded.plugin) : {}),
      reason: others
        ? `name also declared by ${others.map((o) => `${o.packageName}@${o.packageVersion}`).join(', ')}`
        : loaded.ok
          ? undefined
          : loaded.reason,
    });
  }
  return rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** What a plugin declares about its place and data, as JSON. */
function contract(plugin: Plugin): Pick<PluginRow, 'pipelines' | 'reads' | 'writes'> {
  const pipelines = Object.fromEntries(
    Object.entries(plugin.pipelines ?? {}).map(([name, p]) => [
      name,
      { after: [...(p?.after ?? [])], before: [...(p?.before ?? [])], conditional: Boolean(p?.applies) },
    ]),
  );
  return {
    ...(Object.keys(pipelines).length ? { pipelines } : {}),
    reads: [...(plugin.reads ?? [])],
    writes: [...(plugin.writes ?? [])],
  };
}

export function formatPluginTable(rows: PluginRow[]): string {
  const lines: string[] = [];
  for (const ns of NAMESPACES) {
    const inNs = rows.filter((r) => r.namespace === ns);
    if (inNs.length === 0) continue;
    lines.push(`${ns}:`);
    const width = Math.max(...inNs.map((r) => r.name.length));
    for (const r of inNs) {
      const origin = `${r.package}@${r.version}, ${r.source}`;
      const text = r.status === 'ok' ? r.summary : `${r.status.toUpperCase()}: ${r.reason}`;
      lines.push(`  ${r.name.padEnd(width)}  ${text}  [${origin}]`);
    }
  }
  return lines.join('\n');
}
