import { ValidationError } from '../core/errors.js';
import { didYouMean } from '../core/suggest.js';
import type { Objects } from '../objects/index.js';
import type { PluginRegistry } from './registry.js';
import type { PipelineName, Placement, Plugin, QueueEntry } from './types.js';

/** An action a run asks for by name, and where that came from ("--with", "layout.yaml with[0]"). */
export interface RequestedAction {
  name: string;
  origin: string;
}

export interface ResolveOptions {
  /** Actions named by the run, out-of-tree ones included. */
  with?: readonly RequestedAction[];
  /** Keep actions whose `applies` says no (for --only, which names what runs). */
  ignoreApplies?: boolean;
  /** Leave out a named action with no place in this pipeline (a run of several pipelines checks with requireHomes). */
  skipUnplaced?: boolean;
}

interface Member {
  name: string;
  /** Set for actions the run named. */
  origin?: string;
  placement: Placement;
  rank: number;
}

/**
 * The actions of `pipeline` in the order they run: bareon's own actions that declare a place in it,
 * plus those the run names, less those that do not apply to `objects`, ordered by their `after` and
 * `before` constraints (ties keep declaration order). An unknown name, an action without a place in
 * this pipeline, or a cycle of constraints is a ValidationError before anything runs.
 */
export async function resolvePipeline(
  registry: PluginRegistry,
  pipeline: PipelineName,
  objects: Objects,
  opts: ResolveOptions = {},
): Promise<QueueEntry[]> {
  const members: Member[] = [];
  for (const decl of registry.declared) {
    if (decl.namespace !== 'bareon.actions' || decl.source !== 'builtin') continue;
    const loaded = await registry.tryLoad(decl);
    const placement = loaded.ok ? loaded.plugin.pipelines?.[pipeline] : undefined;
    if (placement) members.push({ name: decl.name, placement, rank: members.length });
  }
  for (const want of opts.with ?? []) {
    if (members.some((m) => m.name === want.name)) continue;
    let plugin: Plugin;
    try {
      plugin = await registry.load('bareon.actions', want.name);
    } catch (err) {
      throw new ValidationError(`${want.origin}: ${(err as Error).message}`, {
        hint: `actions that can join the ${pipeline} pipeline: ${(await joinable(registry, pipeline)).join(', ') || 'none'}`,
      });
    }
    const placement = plugin.pipelines?.[pipeline];
    if (!placement && opts.skipUnplaced) continue;
    if (!placement)
      throw new ValidationError(
        `${want.origin}: action "${want.name}" declares no place in the ${pipeline} pipeline (its plugin's pipelines.${pipeline})`,
        { hint: `actions that can join it: ${(await joinable(registry, pipeline)).join(', ')}` },
      );
    members.push({ name: want.name, origin: want.origin, placement, rank: members.length });
  }
  const included = opts.ignoreApplies ? members : members.filter((m) => m.placement.applies?.(objects) ?? true);
  return order(included, pipeline).map((m) => ({
    namespace: 'bareon.actions',
    name: m.name,
    ...(m.origin ? { origin: m.origin } : { from: `${pipeline} pipeline` }),
  }));
}

/** Refuses a named action that declares a place in none of a run's pipelines. */
export async function requireHomes(
  registry: PluginRegistry,
  wanted: readonly RequestedAction[],
  pipelines: readonly PipelineName[],
): Promise<void> {
  for (const w of wanted) {
    const plugin = await registry.load('bareon.actions', w.name);
    if (!pipelines.some((p) => plugin.pipelines?.[p]))
      throw new ValidationError(
        `${w.origin}: action "${w.name}" declares no place in the ${pipelines.join(' or ')} pipeline`,
        { hint: `its plugin's pipelines field says where it runs; this run has ${pipelines.join(', ')}` },
      );
  }
}

/** The installed actions that declare a place in `pipeline`, for error hints. */
export async function joinable(registry: PluginRegistry, pipeline: PipelineName): Promise<string[]> {
  const names: string[] = [];
  for (const decl of registry.declared) {
    if (decl.namespace !== 'bareon.actions') continue;
    const loaded = await registry.tryLoad(decl);
    if (loaded.ok && loaded.plugin.pipelines?.[pipeline]) names.push(decl.name);
  }
  return [...new Set(names)].sort();
}

/** Kahn's topological sort; among actions ready to run, the earliest declared goes first. */
function order(members: Member[], pipeline: PipelineName): Member[] {
  const byName = new Map(members.map((m) => [m.name, m]));
  const after = new Map(members.map((m) => [m.name, new Set<string>()]));
  for (const m of members) {
    for (const a of m.placement.after ?? []) if (byName.has(a) && a !== m.name) after.get(m.name)!.add(a);
    for (const b of m.placement.before ?? []) if (byName.has(b) && b !== m.name) after.get(b)!.add(m.name);
  }
  const done: Member[] = [];
  const left = new Set(members.map((m) => m.name));
  while (left.size > 0) {
    const ready = [...left]
      .filter((n) => [...after.get(n)!].every((a) => !left.has(a)))
      .map((n) => byName.get(n)!)
      .sort((x, y) => x.rank - y.rank);
    if (ready.length === 0) {
      const cycle = findCycle([...left], after);
      throw new ValidationError(
        `the ${pipeline} pipeline has no order: ${cycle.join(' → ')} (each runs after the next one's turn)`,
        { hint: `check the after/before of ${cycle.slice(0, -1).join(', ')}` },
      );
    }
    done.push(ready[0]);
    left.delete(ready[0].name);
  }
  return done;
}

/** A cycle among `names` in the runs-after relation, as a path that ends where it starts. */
function findCycle(names: string[], after: Map<string, Set<string>>): string[] {
  const path: string[] = [];
  let at = names[0];
  while (!path.includes(at)) {
    path.push(at);
    at = [...after.get(at)!].find((a) => names.includes(a))!;
  }
  return [...path.slice(path.indexOf(at)), at];
}

/** Splits a `--with a,b` value into requested actions; unknown names are reported by resolvePipeline. */
export function requestedFrom(values: readonly string[] | undefined, origin: string): RequestedAction[] {
  return (values ?? [])
    .flatMap((v) => v.split(','))
    .map((name) => name.trim())
    .filter(Boolean)
    .map((name) => ({ name, origin }));
}

/** The names of `list` that are not in `known`, as a ValidationError naming the known ones. */
export function refuseUnknownActions(list: readonly string[], known: readonly string[], flag: string): void {
  const unknown = list.filter((n) => !known.includes(n));
  if (unknown.length === 0) return;
  const guess = didYouMean(unknown[0], [...known]);
  throw new ValidationError(
    `${flag}: unknown action(s) ${unknown.join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}`,
    { hint: `actions of this run: ${known.join(', ')}` },
  );
}
