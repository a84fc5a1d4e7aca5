/**
 * `bareon/plugin`: what a plugin needs to declare itself and run, and nothing that is costly to load:
 * the plugin contract, errors, the cleanup stack, the run's manager, sizes, digests, shell quoting,
 * `rootTree` and paths resolved in a root, the shared objects' types and constants, and locating a
 * value in the YAML it came from. What holds zod is not here (the schemas, `sizeField`, `loadLayout`
 * and `loadProfile`, disk hint matching, `z`), nor the Docker adapter: `bareon` exports everything
 * this does, and those. A plugin that imports only this and the other subpaths loads
 * quickly, which counts for bareon's own actions: a deploy loads them all to learn their pipelines.
 */
export { definePlugin, API_VERSION, NAMESPACES } from '../plugins/types.js';
export type {
  Namespace,
  Plugin,
  PluginContext,
  Progress,
  QueueEntry,
  RunFlags,
  Subtask,
  TaskIO,
} from '../plugins/types.js';
export { BareonError, ValidationError, InterruptedError, ExitCode } from '../core/errors.js';
export { CleanupStack } from '../core/cleanup.js';
export { PluginRegistry } from '../plugins/registry.js';
export { runPlugins, prepareRun, pluginSubtask } from '../plugins/manager.js';
export { rootTree } from '../host/root-tree.js';
export type { RootTree } from '../host/root-tree.js';
export {
  appendFileInRoot,
  assertPlainTree,
  readdirInRoot,
  readFileInRoot,
  resolveInRoot,
  RootPathError,
  writeFileInRoot,
} from '../host/in-root.js';
export type { InRootOptions } from '../host/in-root.js';
export * from '../core/size.js';
export * from '../core/digest.js';
export { VERSION, bareonPackageDir } from '../core/version.js';
export { checkSigningKey, removeStaleSignature, SIGNATURE_NAMESPACE, signFile } from '../build/manifest-signing.js';
export * from '../core/shell.js';
export type { DiskExecutor } from '../core/disk-executor.js';
export * from '../objects/configdrive.js';
export * from '../objects/deploy.js';
export * from '../objects/slots.js';
export * from '../objects/volumes.js';
export * from '../objects/yaml-source.js';
export type {
  BuildRecord,
  DiskReservation,
  DiskTarget,
  Objects,
  PartitionRef,
  RootfsSource,
  StepOutcome,
} from '../objects/index.js';
export type {
  Bootloader,
  Disk,
  Filesystem,
  Layout,
  LayoutInput,
  LogicalVolume,
  Partition,
  Raid,
  VolumeGroup,
} from '../objects/layout.js';
export type { Artifact, ArtifactPartition, InstalledPackage, Manifest } from '../objects/artifact.js';
export type { BootstrapBase, ImageBase, Output, Profile, ProfileFile, ProfileUser, Repo } from '../objects/profile.js';
export type { DiskMatch, MatchableDisk, SizeOperator } from '../objects/disk-match.js';
