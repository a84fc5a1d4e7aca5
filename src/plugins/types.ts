import type { z } from 'zod';
import type { CleanupStack } from '../core/cleanup.js';
import type { Progress } from '../core/progress.js';
import type { Objects, SourceClaim, SourceProbe } from '../objects/index.js';

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
  /** What `plugin`'s validate returned in this run (for a plugin run as a subtask, see pluginSubtask). */
  validated(plugin: Plugin): unknown;
}

/**
 * The pipelines bareon assembles from the actions that declare a place in them:
 * - `deploy`: the layout chain on a target disk (bareon-deploy, bareon-build --target, agent jobs);
 * - `image`: the disk actions of an image build, run by the disk-image exporters in a toolbox;
 * - `build`: what follows the exporters of bareon-build (the manifest).
 * A plugin may name a pipeline of its own and run it with `uses: {pipeline}`.
 */
export type PipelineName = 'deploy' | 'image' | 'build' | (string & {});

/** Where an action joins a pipeline. Constraints on actions absent from a run are ignored. */
export interface Placement {
  /** Actions of the pipeline this one runs after. */
  after?: readonly string[];
  /** Actions of the pipeline this one runs before. */
  before?: readonly string[];
  /** Whether it has work with these objects (default: always); an action that does not apply is left out. */
  applies?(objects: Objects): boolean;
}

/** Everything `run` gets: the shared objects, its own parsed options, output, cancellation and cleanup. */
export interface PluginContext<O = unknown, C = unknown> extends TaskIO {
  /** What this plugin's validate returned: what it found, handed to run (no module-level state). */
  checked: C | undefined;
  /** The resolved order of a pipeline this plugin `uses` (action names). */
  pipeline(name: PipelineName): readonly string[];
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
  /** Where the options came from, for error messages and task titles ("profile.yaml outputs[1]"). */
  origin?: string;
  /** Where the entry came from when not named by the run (for --dry-run): "deploy pipeline". */
  from?: string;
}

/**
 * The contract of a plugin module's export.
 * `plan` may adjust the shared objects (all plans run before any validate), `validate` must throw on
 * objects it cannot work with (all validates run before any run), `run` does the work.
 */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds plugins of every options type and validate result
export interface Plugin<O = any, C = any> {
  summary: string;
  options?: z.ZodType<O>;
  /**
   * Plugins this one runs as subtasks ("namespace/name", e.g. "bareon.actions/partitioning"), or a
   * function of the planned objects that names them. The manager loads, plans and validates them
   * with the queue, so every check has passed before anything runs.
   */
  uses?: readonly string[] | ((objects: Objects) => readonly string[]) | { pipeline: PipelineName };
  /**
   * The pipelines this action joins and where (bareon.actions only). bareon's own actions are in
   * their pipelines by default; any other joins when a run names it (`--with`, `with:` in a profile,
   * layout or job).
   */
  pipelines?: Partial<Record<PipelineName, Placement>>;
  /**
   * The shared objects this plugin reads and writes: fields of Objects ("layout", "disks",
   * "configDrive"…) and slots it or others declared ("bareon-plugin-motd/banner"). Listed by
   * `bareon plugins --json`, so who depends on whom is visible.
   */
  reads?: readonly string[];
  writes?: readonly string[];
  /**
   * bareon.deployers only: claims a source whose bytes bareon does not recognise (a format of its
   * own). The deploy action then runs this deployer for it.
   */
  claims?(probe: SourceProbe): SourceClaim | undefined;
  /** Lines for `--dry-run`: what `run` would do with these objects (partitions, offsets, writes, cache hits). Read-only. */
  describe?(objects: Objects, options: O, flags: RunFlags): string[] | Promise<string[]>;
  plan?(objects: Objects, queue: readonly QueueEntry[]): void | Promise<void>;
  /** Throws on objects it cannot work with; may return what it found, which `run` gets as `ctx.checked`. */
  validate?(objects: Objects, options: O): C | undefined | Promise<C | undefined>;
  run(ctx: PluginContext<O, C>): Promise<void | Subtask[]>;
}

/** Identity function that gives plugin authors type checking of their definition. */
export function definePlugin<O = undefined, C = undefined>(plugin: Plugin<O, C>): Plugin<O, C> {
  return plugin;
}
