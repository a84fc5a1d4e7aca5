import path from 'node:path';
import { resolveEpoch } from '../../build/epoch.js';
import type { ConfigDriveFlags } from '../../configdrive/request.js';
import { BareonError, ValidationError } from '../../core/errors.js';
import { runPlugins } from '../../plugins/manager.js';
import { bareonPackageDir } from '../../core/version.js';
import { PluginRegistry } from '../../plugins/registry.js';
import type { QueueEntry } from '../../plugins/types.js';
import { loadLayout, loadProfile, type DeploySource, type Objects, type Profile } from '../../objects/index.js';
import type { Session } from '../session.js';
import { DEFAULT_DEPLOY_LAYOUT, prepareDeploy } from './deploy.js';
import { type RequestedAction, requestedFrom, requireHomes, resolvePipeline } from '../../plugins/pipeline.js';

/**
 * The queue a build runs: its builder, one exporter per output, then the build pipeline (the
 * manifest, and actions named by `with`). `only` (from --outputs) replaces the profile's outputs,
 * keeping the profile's options for a format it lists.
 */
export function buildQueue(profile: Profile, profileFile: string, after: QueueEntry[], only?: string[]): QueueEntry[] {
  const file = path.basename(profileFile);
  const listed = profile.outputs.map((output, i) => ({
    ...(typeof output === 'string' ? { format: output } : output),
    origin: `${file} outputs[${i}]`,
  }));
  const outputs = only
    ? only.map((format) => listed.find((o) => o.format === format) ?? { format, origin: '--outputs' })
    : listed;
  return [
    { namespace: 'bareon.builders', name: profile.builder, origin: `${file} builder` },
    ...outputs.map(
      ({ format, origin, ...options }): QueueEntry => ({
        namespace: 'bareon.exporters',
        name: format,
        options,
        origin,
      }),
    ),
    ...after,
  ];
}

export interface BuildOptions extends ConfigDriveFlags {
  outDir: string;
  noCache: boolean;
  dryRun: boolean;
  /** Build to disk: write the root filesystem onto this block device or image file. */
  target?: string;
  size?: string;
  layout?: string;
  yes: boolean;
  preserveOnError: boolean;
  /** --outputs: write these formats instead of the profile's outputs. */
  outputs?: string[];
  /** --with: actions to add (NAME[,NAME], repeatable), to the build pipeline and, with --target, the deploy pipeline. */
  with?: string[];
  /** --sign: the SSH key that signs the manifest. */
  sign?: string;
}

/** The builder's root filesystem as a deploy source: the container's export stream, opened when the deployer runs. */
function containerSource(objects: Objects, profile: Profile): DeploySource {
  return {
    uri: `build:${profile.name}`,
    format: 'tar',
    content: 'rootfs',
    head: Buffer.alloc(0),
    open(signal) {
      if (!objects.rootfs) throw new BareonError('build to disk: the builder produced no root filesystem');
      return objects.rootfs.open(signal);
    },
  };
}

/**
 * Build to disk (`--target`): the builder, then the deploy chain (partitioning, filesystems, deploy,
 * fstab, bootloader, configdrive when asked) on the target, then the manifest. The root filesystem
 * streams from the container's export onto the mounted target filesystems; the profile's outputs are
 * not written.
 */
async function buildToDiskQueue(
  objects: Objects,
  profile: Profile,
  opts: BuildOptions,
  session: Session,
  registry: PluginRegistry,
  wanted: RequestedAction[],
): Promise<{ queue: QueueEntry[]; confirm: () => Promise<void> }> {
  if (opts.layout) {
    objects.layoutFile = path.resolve(opts.layout);
    objects.layout = await loadLayout(objects.layoutFile);
  } else if (!objects.layout) {
    if (!profile.bootable)
      throw new ValidationError(`${objects.profileFile}: --target needs a layout`, {
        hint: 'give --layout FILE, a layout: in the profile, or make the profile bootable: true (the default bootable layout)',
      });
    objects.layoutFile = path.join(bareonPackageDir(), DEFAULT_DEPLOY_LAYOUT);
    objects.layout = await loadLayout(objects.layoutFile);
  }
  if (objects.layout.disks.length !== 1)
    throw new ValidationError(
      `${objects.layoutFile}: disks: a build to disk writes one target disk; the layout has ${objects.layout.disks.length}`,
    );
  const prepared = await prepareDeploy(
    {
      source: containerSource(objects, profile),
      target: opts.target,
      layout: { layout: objects.layout, file: objects.layoutFile ?? objects.profileFile! },
      configDriveSection: profile.configdrive ? { drive: profile.configdrive, file: objects.profileFile! } : undefined,
      size: opts.size,
      // the stream is hashed and recorded in the manifest; there is nothing to verify it against
      settings: { verify: false, grow: false, preserveOnError: opts.preserveOnError },
      yes: opts.yes,
      dryRun: opts.dryRun,
      targetHints: [],
      keepLabels: [],
      with: wanted,
      configDrive: opts,
    },
    registry,
    session,
    objects,
    true,
  );
  return {
    queue: [
      { namespace: 'bareon.builders', name: profile.builder, origin: `${path.basename(objects.profileFile!)} builder` },
      ...prepared.queue,
      ...(await resolvePipeline(registry, 'build', objects, { with: wanted, skipUnplaced: true })),
    ],
    confirm: prepared.confirm,
  };
}

export async function buildCommand(profileFile: string, opts: BuildOptions, session: Session): Promise<void> {
  const { profile, layout, layoutFile } = await loadProfile(profileFile);
  const profileDir = path.dirname(path.resolve(profileFile));
  const { epoch } = resolveEpoch(profile.epoch, process.env, profileFile);
  const objects: Objects = {
    profile,
    profileFile: path.resolve(profileFile),
    layout,
    layoutFile,
    outDir: path.resolve(opts.outDir),
    epoch,
    artifacts: [],
    ...(opts.sign ? { signing: { key: path.resolve(opts.sign) } } : {}),
  };
  const registry = await PluginRegistry.discover({
    extraDirs: profile.plugins.map((p) => path.resolve(profileDir, p)),
  });
  if (opts.outputs && opts.target)
    throw new ValidationError('--outputs and --target: a build to disk writes no outputs', {
      hint: 'drop one of them',
    });
  const wanted = [
    ...profile.with.map((name, i) => ({ name, origin: `${path.basename(profileFile)} with[${i}]` })),
    ...requestedFrom(opts.with, '--with'),
  ];
  await requireHomes(registry, wanted, opts.target ? ['build', 'deploy'] : ['build']);
  const toDisk = opts.target ? await buildToDiskQueue(objects, profile, opts, session, registry, wanted) : undefined;
  const queue =
    toDisk?.queue ??
    buildQueue(
      profile,
      profileFile,
      await resolvePipeline(registry, 'build', objects, { with: wanted, skipUnplaced: true }),
      opts.outputs,
    );
  await runPlugins({
    registry,
    queue,
    objects,
    flags: { dryRun: opts.dryRun, yes: opts.yes, noCache: opts.noCache },
    confirm: toDisk?.confirm,
    ...session,
  });
}
