import type { z } from 'zod';
import type { CleanupStack } from '../core/cleanup.js';
import type { Progress } from '../core/progress.js';
import type { Objects } from '../objects/index.js';

export const NAMESPACES = [
  'bareon.drivers',
  'bareon.builders',
  'bareon.exporters',
  'bareon.deployers',
  'bareon.actions',
] as const;
export type Namespace = (typeof NAMESPACES)[number];

/** The plugin API version this bareon implements (`"bareon": {"apiVersion": 1}` in package.json). */
export const API_VERSION = 1;

export type { Progress };

/** What a running task can do to report itself. */
export interface TaskIO {
  /** One line of output (for example a container's stdout); the tail is shown live and kept for errors. */
  log(line: string): void;
  progress: Progress;
  setTitle(title: string): void;
}

/** A subtask a plugin's `run` may return; the manager runs them in order as nested tasks. */
export interface Subtask {
  title: string;
  run(io: TaskIO): Promise<void | Subtask[]>;
}

/** Flags of the command line that plugins may honour. */
export interface RunFlags {
  dryRun: boolean;
  yes: boolean;
  noCache: boolean;
}

/** Access to the other plugins of the run, for plugins that compose them (an image exporter runs the disk actions). */
export interface PluginLoader {
  load(namespace: Namespace, name: string): Promise<Plugin>;
}

/** Everything `run` gets: the shared objects, its own parsed options, output, cancellation and cleanup. */
export interface PluginContext<O = unknown> extends TaskIO {
  objects: Objects;
  options: O;
  /** Aborted on SIGINT/SIGTERM; pass it to long operations. */
  signal: AbortSignal;
  /** LIFO teardown stack: `ctx.cleanup.defer(fn)`. */
  cleanup: CleanupStack;
  /** Identifies this run; containers and images carry it as the `org.bareon.run` label. */
  runId: string;
  flags: RunFlags;
  plugins: PluginLoader;
}

/** One queued plugin: what the manager is asked to run. */
export interface QueueEntry {
  namespace: Namespace;
  name: string;
  /** Raw options for the plugin, parsed with its `options` schema before validate. */
  options?: unknown;
  /** Where the options came from, for error messages ("profile.yaml outputs[1]"). */
  origin?: string;
}

/**
 * The contract of a plugin module's export.
 * `plan` may adjust the shared objects (all plans run before any validate), `validate` must throw on
 * objects it cannot work with (all validates run before any run), `run` does the work.
 */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds plugins of every options type
export interface Plugin<O = any> {
  summary: string;
  options?: z.ZodType<O>;
  /**
   * Plugins this one runs as subtasks ("namespace/name", e.g. "bareon.actions/partitioning"), or a
   * function of the planned objects that names them. The manager loads, plans and validates them
   * with the queue, so every check has passed before anything runs.
   */
  uses?: readonly string[] | ((objects: Objects) => readonly string[]);
  /** Lines for `--dry-run`: what `run` would do with these objects (partitions, offsets, writes, cache hits). Read-only. */
  describe?(objects: Objects, options: O, flags: RunFlags): string[] | Promise<string[]>;
  plan?(objects: Objects, queue: readonly QueueEntry[]): void | Promise<void>;
  validate?(objects: Objects, options: O): void | Promise<void>;
  run(ctx: PluginContext<O>): Promise<void | Subtask[]>;
}

/** Identity function that gives plugin authors type checking of their definition. */
export function definePlugin<O = undefined>(plugin: Plugin<O>): Plugin<O> {
  return plugin;
}
