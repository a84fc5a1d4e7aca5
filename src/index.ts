/**
 * bareon's public API for plugin authors: the plugin contract, the shared objects and their
 * schemas, errors, the Docker adapter, and paths inside a deployed root that never lead out of it.
 */
export { definePlugin, API_VERSION, NAMESPACES } from './core/plugins/types.js';
export type { Namespace, Plugin, PluginContext, Progress, QueueEntry, RunFlags, Subtask, TaskIO } from './core/plugins/types.js';
export { BareonError, ValidationError, InterruptedError, ExitCode } from './core/errors.js';
export { CleanupStack } from './core/cleanup.js';
export { PluginRegistry } from './core/plugins/registry.js';
export { runPlugins, prepareRun } from './core/manager.js';
export * from './objects/index.js';
export { DockerEngine, RUN_LABEL } from './docker/engine.js';
export type { CommandResult, ContainerSpec } from './docker/engine.js';
export { rootTree } from './host/root-tree.js';
export type { RootTree } from './host/root-tree.js';
export { appendFileInRoot, assertPlainTree, readdirInRoot, readFileInRoot, resolveInRoot, RootPathError, writeFileInRoot } from './host/in-root.js';
export type { InRootOptions } from './host/in-root.js';
