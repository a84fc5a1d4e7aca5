import type { ListrTaskWrapper } from 'listr2';
import type { Objects } from '../objects/index.js';
import { issuesToError } from '../objects/yaml-source.js';
import type { CleanupStack } from '../core/cleanup.js';
import { BareonError, ValidationError } from '../core/errors.js';
import type { PluginRegistry } from './registry.js';
import {
  NAMESPACES,
  type Namespace,
  type Plugin,
  type PluginContext,
  type QueueEntry,
  type RunFlags,
  type Subtask,
  type TaskIO,
} from './types.js';
import { throttledProgress } from '../core/progress.js';
import { resolvePipeline } from './pipeline.js';
import type { Reporter } from '../core/reporter.js';

export interface RunRequest {
  registry: PluginRegistry;
  queue: QueueEntry[];
  objects: Objects;
  flags: RunFlags;
  signal: AbortSignal;
  cleanup: CleanupStack;
  runId: string;
  reporter: Reporter;
  /** Runs after every plugin validated and before the first one runs (not on --dry-run): the last word before writing. */
  confirm?: (prepared: PreparedEntry[]) => Promise<void>;
}

export interface PreparedEntry {
  entry: QueueEntry;
  plugin: Plugin;
  options: unknown;
  /** Loaded because another plugin `uses` it: planned and validated here, run by its user. */
  usedBy?: string;
  /** The pipelines this plugin `uses`, resolved: action names in order. */
  pipelines: Record<string, readonly string[]>;
  /** What its validate returned, for its run. */
  checked: unknown;
}

const label = (e: QueueEntry) => `${e.namespace}/${e.name}`;

/**
 * Loads every queued plugin, runs all `plan` hooks in queue order, parses each plugin's options and
 * runs every `validate`. Throws one ValidationError listing every problem; nothing has run yet.
 */
export async function prepareRun(req: Pick<RunRequest, 'registry' | 'queue' | 'objects'>): Promise<PreparedEntry[]> {
  const { entries, plugins, usedBy, pipelines } = await loadWithUses(req);
  const prepared: PreparedEntry[] = [];
  const problems: string[] = [];
  const hints: string[] = [];
  for (const [i, plugin] of plugins.entries()) {
    const entry = entries[i];
    let options: unknown = entry.options;
    if (plugin.options) {
      const parsed = plugin.options.safeParse(entry.options ?? {}, { reportInput: true });
      if (!parsed.success) {
        const err = issuesToError(parsed.error.issues, plugin.options, {
          label: `${entry.origin ?? label(entry)} options`,
        });
        problems.push(`${label(entry)}: ${err.message}`);
        if (err.hint) hints.push(err.hint);
        continue;
      }
      options = parsed.data;
    }
    try {
      const checked = await plugin.validate?.(req.objects, options);
      prepared.push({ entry, plugin, options, usedBy: usedBy.get(i), pipelines: pipelines.get(i) ?? {}, checked });
    } catch (err) {
      // Whatever a validate hook throws is its verdict on the objects (plain-JS plugins throw plain Errors).
      // zod loads here, not with the manager (a hook that threw a ZodError has loaded it already)
      const { z } = await import('zod');
      if (err instanceof z.ZodError)
        problems.push(`${label(entry)}: ${issuesToError(err.issues, z.any(), { label: label(entry) }).message}`);
      else problems.push(`${label(entry)}: ${(err as Error)?.message ?? String(err)}`);
      if (err instanceof BareonError && err.hint) hints.push(err.hint);
    }
  }
  if (problems.length > 0) {
    throw new ValidationError(problems.length === 1 ? problems[0] : `validation failed:\n  ${problems.join('\n  ')}`, {
      hint: hints.length ? hints.join('; ') : 'nothing was changed',
    });
  }
  return prepared;
}

/** "bareon.actions/partitioning" → its queue entry. */
function parseUse(ref: string, user: string): QueueEntry {
  const slash = ref.lastIndexOf('/');
  const namespace = ref.slice(0, slash) as Namespace;
  if (slash < 0 || !NAMESPACES.includes(namespace))
    throw new ValidationError(`${user}: uses "${ref}": expected "namespace/name" such as bareon.actions/partitioning`);
  return { namespace, name: ref.slice(slash + 1), origin: `used by ${user}` };
}

/**
 * Loads the queue, plans it in order, then adds every plugin named by a `uses` (transitively, each
 * once, after its user's plan so that `uses` may depend on the planned objects) and plans those too.
 */
async function loadWithUses(req: Pick<RunRequest, 'registry' | 'queue' | 'objects'>) {
  const entries: QueueEntry[] = [...req.queue];
  const plugins: Plugin[] = [];
  const usedBy = new Map<number, string>();
  const pipelines = new Map<number, Record<string, readonly string[]>>();
  for (const entry of entries) plugins.push(await req.registry.load(entry.namespace, entry.name));
  for (const plugin of plugins) await plugin.plan?.(req.objects, req.queue);
  for (let i = 0; i < plugins.length; i++) {
    const declared = plugins[i].uses;
    let uses: readonly string[];
    if (typeof declared === 'function') uses = declared(req.objects);
    else if (declared && 'pipeline' in declared) {
      const order = await resolvePipeline(req.registry, declared.pipeline, req.objects);
      pipelines.set(i, { [declared.pipeline]: order.map((e) => e.name) });
      uses = order.map((e) => `${e.namespace}/${e.name}`);
    } else uses = declared ?? [];
    for (const ref of uses) {
      const use = parseUse(ref, label(entries[i]));
      if (entries.some((e) => e.namespace === use.namespace && e.name === use.name)) continue;
      const plugin = await req.registry.load(use.namespace, use.name);
      await plugin.plan?.(req.objects, req.queue);
      usedBy.set(entries.length, label(entries[i]));
      entries.push(use);
      plugins.push(plugin);
    }
  }
  return { entries, plugins, usedBy, pipelines };
}

// biome-ignore lint/suspicious/noExplicitAny: a task of any renderer; taskIO uses only what they share
type AnyTask = ListrTaskWrapper<unknown, any, any>;

function taskIO(task: AnyTask, path: string, reporter: Reporter): TaskIO {
  let currentPath = path;
  return {
    log(line) {
      task.output = line;
      reporter.emit({ event: 'log', task: currentPath, line });
    },
    progress: throttledProgress((bytes, total, text) => {
      task.output = text;
      reporter.emit({ event: 'progress', task: currentPath, bytes, total, text });
    }, reporter.progressIntervalMs),
    setTitle(title) {
      task.title = title;
      currentPath = title;
    },
  };
}

/** Runs `body` as one reported task: started, then finished or failed, with its duration. */
async function reported<T>(reporter: Reporter, task: AnyTask, body: () => Promise<T>): Promise<T> {
  const started = Date.now();
  reporter.emit({ event: 'started', task: task.title ?? '' });
  try {
    const result = await body();
    reporter.emit({ event: 'finished', task: task.title ?? '', duration_ms: Date.now() - started });
    return result;
  } catch (err) {
    reporter.emit({
      event: 'failed',
      task: task.title ?? '',
      duration_ms: Date.now() - started,
      error: (err as Error)?.message ?? String(err),
    });
    throw err;
  }
}

function subtaskList(task: AnyTask, subtasks: Subtask[], reporter: Reporter) {
  return task.newListr(
    subtasks.map((sub) => ({
      title: sub.title,
      task: (_: unknown, child: AnyTask) =>
        reported(reporter, child, async () => {
          const more = await sub.run(taskIO(child, sub.title, reporter));
          if (Array.isArray(more) && more.length > 0) await subtaskList(child, more, reporter).run();
        }),
      rendererOptions: { outputBar: 5, persistentOutput: false },
    })),
    { exitOnError: true, concurrent: false },
  );
}

/** Runs prepared plugins in queue order as a listr2 task tree. Cleanup is the caller's (see runPlugins). */
export async function executeRun(prepared: PreparedEntry[], req: RunRequest): Promise<void> {
  const { reporter } = req;
  const { Listr } = await import('listr2');
  const listr = new Listr(
    prepared
      .filter((p) => !p.usedBy)
      .map(({ entry, plugin, options, pipelines, checked }) => ({
        title: entry.origin ? `${entry.name} (${entry.origin})` : entry.name,
        task: (_: unknown, task: AnyTask) =>
          reported(reporter, task, async () => {
            const ctx: PluginContext = {
              ...taskIO(task, entry.name, reporter),
              objects: req.objects,
              options,
              signal: req.signal,
              cleanup: req.cleanup,
              runId: req.runId,
              flags: req.flags,
              checked,
              plugins: {
                load: (namespace, name) => req.registry.load(namespace, name),
                validated: (p) => prepared.find((e) => e.plugin === p)?.checked,
              },
              pipeline: (name) => {
                const order = pipelines[name];
                if (!order)
                  throw new BareonError(
                    `${label(entry)} runs the ${name} pipeline without declaring uses: {pipeline: '${name}'}`,
                  );
                return order;
              },
            };
            const subtasks = await plugin.run(ctx);
            if (Array.isArray(subtasks) && subtasks.length > 0) await subtaskList(task, subtasks, reporter).run();
          }),
        rendererOptions: { outputBar: 5, persistentOutput: false },
      })),
    {
      concurrent: false,
      exitOnError: true,
      registerSignalListeners: false,
      renderer: reporter.renderer,
      fallbackRenderer: reporter.format === 'json' ? 'silent' : 'simple',
      fallbackRendererCondition: !reporter.tty,
      rendererOptions: { collapseSubtasks: false },
    } as never,
  );
  await listr.run();
}

/**
 * Runs another plugin as a subtask of `ctx`'s task, sharing its objects, cancellation and cleanup;
 * its options are parsed with its own schema. For plugins that compose others.
 */
export function pluginSubtask(ctx: PluginContext, plugin: Plugin, title: string, options: unknown = {}): Subtask {
  return {
    title,
    run: async (io) => {
      const parsed = plugin.options ? plugin.options.parse(options) : options;
      return (
        (await plugin.run({ ...ctx, ...io, options: parsed, checked: ctx.plugins.validated(plugin) })) ?? undefined
      );
    },
  };
}

/** The dry-run plan: what would run, in order, with parsed options and each plugin's own description. */
export async function describePlan(prepared: PreparedEntry[], objects: Objects, flags: RunFlags): Promise<string> {
  const lines = ['plan (dry run, nothing will be changed):'];
  let n = 0;
  for (const { entry, plugin, options, usedBy } of prepared) {
    const opts =
      options === undefined || (typeof options === 'object' && options && Object.keys(options).length === 0)
        ? ''
        : ` ${JSON.stringify(options)}`;
    const from = entry.origin || entry.from ? ` (${entry.origin ?? entry.from})` : '';
    lines.push(usedBy ? `     ${label(entry)}${opts} (run by ${usedBy})` : `  ${++n}. ${label(entry)}${opts}${from}`);
    for (const line of (await plugin.describe?.(objects, options, flags)) ?? []) lines.push(`       ${line}`);
  }
  return lines.join('\n');
}

/** plan → validate → run, with the cleanup stack drained at the end whatever happens. */
export async function runPlugins(req: RunRequest): Promise<void> {
  let ok = false;
  try {
    const prepared = await prepareRun(req);
    if (req.flags.dryRun) {
      req.reporter.print(await describePlan(prepared, req.objects, req.flags));
      ok = true;
      return;
    }
    await req.confirm?.(prepared);
    await executeRun(prepared, req);
    ok = true;
  } finally {
    const failures = await req.cleanup.run(ok ? 'ok' : 'failed');
    for (const f of failures) req.reporter.warn(`cleanup failed: ${f.message}`);
  }
}
