/**
 * `bareon`: the public API for plugin authors: the plugin contract, the shared objects and their
 * schemas, errors, sizes, the run's manager, and paths inside a deployed root that never lead out of
 * it. Disks, streams and containers have subpaths of their own: `bareon/disk`, `bareon/stream`,
 * `bareon/containers`.
 */
export { definePlugin, API_VERSION, NAMESPACES } from './plugins/types.js';
export type {
  Namespace,
  Plugin,
  PluginContext,
  Progress,
  QueueEntry,
  RunFlags,
  Subtask,
  TaskIO,
} from './plugins/types.js';
export { BareonError, ValidationError, InterruptedError, ExitCode } from './core/errors.js';
export { CleanupStack } from './core/cleanup.js';
export { PluginRegistry } from './plugins/registry.js';
export { runPlugins, prepareRun, pluginSubtask } from './plugins/manager.js';
export * from './objects/index.js';
export { DockerEngine, RUN_LABEL } from './docker/engine.js';
export type { CommandResult, ContainerSpec } from './docker/engine.js';
export { rootTree } from './host/root-tree.js';
export type { RootTree } from './host/root-tree.js';
export {
  appendFileInRoot,
  assertPlainTree,
  readdirInRoot,
  readFileInRoot,
  resolveInRoot,
  RootPathError,
  writeFileInRoot,
} from './host/in-root.js';
export type { InRootOptions } from './host/in-root.js';
export * from './core/size.js';
export * from './core/digest.js';
export { VERSION, bareonPackageDir } from './core/version.js';
export * from './core/shell.js';
export * from './objects/volumes.js';
export * from './objects/yaml-source.js';
export type * from './objects/layout.js';
export type { DiskExecutor } from './core/disk-executor.js';
export { z } from 'zod';
