/**
 * `bareon`: the public API for plugin authors: the plugin contract, the shared objects and their
 * schemas, errors, sizes, the run's manager, and paths inside a deployed root that never lead out of
 * it. `bareon/plugin` is all of this but the schemas, zod's `z` and the Docker adapter, and loads
 * without them. Disks, streams and containers have subpaths of their own: `bareon/disk`,
 * `bareon/stream`, `bareon/containers`.
 */
export * from './api/plugin.js';
export * from './objects/index.js';
export { DockerEngine, RUN_LABEL } from './docker/engine.js';
export type { CommandResult, ContainerSpec } from './docker/engine.js';
export type * from './objects/layout.js';
export { z } from 'zod';
