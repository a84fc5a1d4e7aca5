import path from 'node:path';
import { BareonError, ValidationError } from '../../core/errors.js';
import { parseChecksum } from '../../objects/checksum.js';
import { runPlugins } from '../../plugins/manager.js';
import { bareonPackageDir } from '../../core/version.js';
import { PluginRegistry } from '../../plugins/registry.js';
import type { QueueEntry } from '../../plugins/types.js';
import { readPartitionTable } from '../../disk/partition-table.js';
import { placePartitions } from '../../disk/geometry.js';
import { assignIdentifiers } from '../../disk/identifiers.js';
import { rootVolume } from '../../disk/layout-checks.js';
import { ext4Uuid } from '../../source/magic.js';
import { HostExecutor } from '../../host/executor.js';
import { confirmOverwrite, openHostTarget, sizeOption } from './host-target.js';
import { resolveTarget } from './target-hints.js';
import { keepLabels } from '../../disk/kept-partitions.js';
import type { DeployInput, DeploySource, Disk, DiskTarget, Layout, Objects } from '../../objects/index.js';
import { layoutTreeOnce } from '../../host/layout-tree.js';
import { locateIn } from '../../objects/yaml-source.js';
import { claimSource } from '../../plugins/claims.js';
import { refuseUnknownActions, requestedFrom, resolvePipeline } from '../../plugins/pipeline.js';
import { resolveSource } from '../../source/resolve.js';
import { configDriveRequest, type ConfigDriveFlags } from '../../configdrive/request.js';
import type { Session } from '../session.js';

/** The layout a rootfs or filesystem image gets when none is given. */
export const DEFAULT_DEPLOY_LAYOUT = 'profiles/layouts/bios-uefi-gpt.yaml';

export interface DeployOptions extends ConfigDriveFlags {
  layout?: string;
  only?: string;
  skip?: string;
  /** --with: actions to add to the deploy pipeline (NAME[,NAME], repeatable), out-of-tree ones included. */
  with?: string[];
  size?: string;
  format?: string;
  checksum?: string;
  /** --bmap FILE, or false for --no-bmap. */
  bmap?: string | false;
  /** An allowed-signers file: deploy only a manifest signed by one of its keys. */
  trust?: string;
  verify: boolean;
  grow: boolean;
  preserveOnError: boolean;
  yes: boolean;
  dryRun: boolean;
  /** KEY=VALUE disk hints that choose the target among this machine's disks. */
  targetHint: string[];
  /** Partitions (GPT name or filesystem label) to leave as they are. */
  keepLabel: string[];
}

/** bareon-deploy's command line as a deploy request. */
export function deployInputFromCli(source: string, target: string | undefined, opts: DeployOptions): DeployInput {
  return {
    source,
    target,
    layout: opts.layout,
    checksum: opts.checksum,
    bmap: opts.bmap,
    trust: opts.trust,
    format: opts.format,
    size: opts.size,
    settings: { verify: opts.verify, grow: opts.grow, preserveOnError: opts.preserveOnError },
    yes: opts.yes,
    dryRun: opts.dryRun,
    targetHints: opts.targetHint ?? [],
    keepLabels: opts.keepLabel ?? [],
    with: requestedFrom(opts.with, '--with'),
    only: opts.only,
    skip: opts.skip,
    configDrive: {
      userData: opts.userData,
      metaData: opts.metaData,
      networkConfig: opts.networkConfig,
      configDrive: opts.configDrive,
      configDriveFlavor: opts.configDriveFlavor,
      configDriveFs: opts.configDriveFs,
    },
  };
}

/** `--only a,b` → names; undefined when the flag is absent. */
function actionList(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : requestedFrom([value], '').map((r) => r.name);
}

/**
 * The deploy pipeline for these objects: bareon's actions that apply, the actions `--with` and the
 * layout's `with:` add, then --only (which names what runs, applicable or not) and --skip.
 */
export async function deployQueue(
  registry: PluginRegistry,
  objects: Objects,
  opts: Pick<DeployInput, 'only' | 'skip' | 'with'>,
  lenient = false,
): Promise<QueueEntry[]> {
  const layoutName = objects.layoutFile ? path.basename(objects.layoutFile) : 'layout';
  const wanted = [
    ...(objects.layout?.with ?? []).map((name, i) => ({ name, origin: `${layoutName} with[${i}]` })),
    ...opts.with,
  ];
  const only = actionList(opts.only);
  const skip = actionList(opts.skip) ?? [];
  const resolve = { with: wanted, skipUnplaced: lenient };
  const applicable = await resolvePipeline(registry, 'deploy', objects, resolve);
  const all =
    only || skip.length
      ? await resolvePipeline(registry, 'deploy', objects, { ...resolve, ignoreApplies: true })
      : applicable;
  const known = all.map((e) => e.name);
  refuseUnknownActions(only ?? [], known, '--only');
  refuseUnknownActions(skip, known, '--skip');
  const queue = (only ? all.filter((e) => only.includes(e.name)) : applicable).filter((e) => !skip.includes(e.name));
  if (queue.length === 0)
    throw new ValidationError('nothing to do: --only/--skip leave no action', {
      hint: `this source runs: ${applicable.map((e) => e.name).join(', ')}`,
    });
  return queue;
}

function checksumOption(value: string | undefined): { sha256?: string; sha512?: string } {
  if (value === undefined) return {};
  const parsed = parseChecksum(value);
  if (!parsed)
    throw new ValidationError(`--checksum: expected sha256:<64 hex digits> or sha512:<128 hex digits>, got "${value}"`);
  return { [parsed.algorithm]: parsed.hex };
}

/**
 * --trust: the allowed signers, and the settings that would let a trusted deploy write bytes the
 * signed manifest does not pin refused.
 */
async function trustOption(input: DeployInput) {
  const what = input.trustOrigin ?? '--trust';
  if (!input.settings.verify)
    throw new ValidationError(`${what} with --no-verify: a trusted manifest's artifacts are always verified`, {
      hint: 'drop --no-verify (verify: false in a job)',
    });
  if (input.checksum !== undefined)
    throw new ValidationError(`${what} with --checksum: the signed manifest gives the checksum`, {
      hint: 'drop --checksum (checksum: in a job)',
    });
  if (typeof input.source !== 'string')
    throw new ValidationError(`${what}: only a deploy from a signed manifest can be trusted`);
  const { loadTrust } = await import('../../source/manifest-trust.js');
  return loadTrust(input.trust as string, what);
}

/** When partitioning does not run, each disk must already carry the layout's table: adopt it, or stop. */
async function adoptExistingTable(target: DiskTarget, disk: Disk): Promise<void> {
  const planned = placePartitions(disk, target.size);
  const table = await readPartitionTable(new HostExecutor(), target.path);
  const matches =
    table &&
    (table.label === 'dos' ? 'msdos' : 'gpt') === disk.table &&
    planned.partitions.every((p) =>
      table.partitions.some((q) => q.number === p.number && q.start === p.start && q.size === p.size),
    );
  if (!matches) {
    throw new ValidationError(
      `target ${target.path} does not hold the layout's partition table${table ? '' : ' (it has none)'}`,
      {
        hint: 'run partitioning first (drop --only/--skip partitioning), or give the layout the disk was partitioned with',
      },
    );
  }
  for (const p of planned.partitions)
    p.spec.uuid = table.partitions.find((q) => q.number === p.number)!.uuid ?? p.spec.uuid;
  target.geometry = planned;
}

/**
 * The device or file each layout disk is written to. One disk: TARGET, --target-hint, its device:
 * or its match:. Several disks: each its own device: or match:, all different.
 */
async function layoutTargets(
  layout: Layout | undefined,
  layoutFile: string | undefined,
  targetArg: string | undefined,
  hints: string[],
  session: Session,
): Promise<string[]> {
  if (!layout || layout.disks.length === 1) {
    const disk = layout?.disks[0];
    const resolved = await resolveTarget(
      targetArg ?? (hints.length ? undefined : disk?.device),
      hints,
      disk?.match,
      layoutFile,
    );
    if (resolved.how) session.reporter.print(`target: ${resolved.how}`);
    return [resolved.path];
  }
  if (targetArg || hints.length) {
    throw new ValidationError(
      `${layoutFile}: the layout has ${layout.disks.length} disks; each is chosen by its own match: (or device:), so give no TARGET or --target-hint`,
    );
  }
  const paths: string[] = [];
  for (const [d, disk] of layout.disks.entries()) {
    if (!disk.device && !disk.match)
      throw new ValidationError(
        `${locateIn(layout, ['disks', d], layoutFile!)}: disk "${disk.id}" needs match: (serial, wwn, size…) or device: to find its disk`,
      );
    const resolved = await resolveTarget(disk.device, [], disk.match, layoutFile, d);
    const twice = paths.indexOf(resolved.path);
    if (twice >= 0)
      throw new ValidationError(
        `${layoutFile}: disks "${layout.disks[twice].id}" and "${disk.id}" both select ${resolved.path}`,
        { hint: 'make their match: hints tell the disks apart (`bareon disks` lists them)' },
      );
    session.reporter.print(`disk ${disk.id}: ${resolved.how ?? resolved.path}`);
    paths.push(resolved.path);
  }
  return paths;
}

/** A deploy ready to run: its objects (targets opened), its queue, and the question before writing. */
export interface PreparedDeploy {
  objects: Objects;
  queue: QueueEntry[];
  confirm: () => Promise<void>;
}

/**
 * Turns a deploy request into the shared objects and the deploy pipeline: the source resolved, the
 * layout loaded (the default one for rootfs and filesystem images), the config drive, the targets
 * opened and refused when busy. `objects` may carry what the caller has (a build's profile); with
 * `lenient`, actions named for several pipelines that have no place in this one are left out.
 */
export async function prepareDeploy(
  input: DeployInput,
  registry: PluginRegistry,
  session: Session,
  objects: Objects = { artifacts: [] },
  lenient = false,
): Promise<PreparedDeploy> {
  const trust = input.trust === undefined ? undefined : await trustOption(input);
  const resolved =
    typeof input.source === 'string'
      ? await resolveSource(input.source, {
          format: input.format,
          ...checksumOption(input.checksum),
          signal: session.signal,
          claim: (probe) => claimSource(registry, probe),
          trust,
        })
      : undefined;
  const source = resolved ?? (input.source as DeploySource);
  // --bmap names the map (or --no-bmap none) over whatever a manifest lists or lies beside the image
  if (typeof input.source === 'string' && input.bmap !== undefined)
    source.bmap = input.bmap === false ? false : { file: path.resolve(input.bmap), from: '--bmap' };
  if (resolved?.signedBy) {
    const s = resolved.signedBy;
    session.reporter.print(
      `manifest signed by ${s.principal} (${s.keyType} ${s.fingerprint}, ${trust?.file}:${s.line})`,
    );
  }
  const layoutFile =
    typeof input.layout === 'object'
      ? input.layout.file
      : (input.layout ??
        (source.content !== 'disk' ? path.join(bareonPackageDir(), DEFAULT_DEPLOY_LAYOUT) : undefined));
  // the layout's schemas (zod) and the YAML parser load only when there is a layout file: a whole-disk image has none
  const layout =
    typeof input.layout === 'object'
      ? input.layout.layout
      : layoutFile
        ? await (await import('../../objects/index.js')).loadLayout(layoutFile)
        : undefined;
  const section =
    input.configDriveSection ??
    (layout?.configdrive && layoutFile ? { drive: layout.configdrive, file: layoutFile } : undefined);
  objects.source = source;
  objects.configDrive = await configDriveRequest(input.configDrive, section);
  objects.deploy = input.settings;
  if (layout && layoutFile) {
    objects.layout = layout;
    objects.layoutFile = layoutFile;
  }
  const queue = await deployQueue(registry, objects, input, lenient);

  if (input.keepLabels.length && !layout)
    throw new ValidationError(
      '--keep-label: a whole-disk image replaces the whole disk; kept partitions apply to rootfs and filesystem images deployed onto a layout',
    );
  const targetPaths = await layoutTargets(layout, layoutFile, input.target, input.targetHints, session);
  objects.target = targetPaths[0];
  if (input.settings.verify === false && typeof input.source === 'string')
    session.reporter.warn(`--no-verify: ${input.source} is written without checking its sha256`);
  if (objects.layout && layoutFile) {
    keepLabels(objects.layout.disks, input.keepLabels, layoutFile);
    // a filesystem image brings its own UUID, which fstab and GRUB must name; the others are made up
    const root = source.content === 'fs' ? rootVolume(objects.layout, layoutFile) : undefined;
    if (root?.fs && !root.fs.uuid) root.fs.uuid = ext4Uuid(source.head);
    assignIdentifiers(objects.layout);
  }
  const size = sizeOption(input.size) ?? (source.content === 'disk' ? source.virtualSize : undefined);
  // one root tree for all disks of the layout, mounted when an action first asks for it
  const mountedTree = layoutTreeOnce(objects, session.cleanup, session.signal);
  const opened: Awaited<ReturnType<typeof openHostTarget>>[] = [];
  for (const [d, targetPath] of targetPaths.entries()) {
    const sizeFrom = input.size ? '--size' : `the image's virtual size`;
    opened.push(
      await openHostTarget(
        targetPath,
        {
          id: objects.layout?.disks[d].id ?? 'target',
          size: d === 0 ? size : undefined,
          sizeFrom,
          preserveOnError: input.settings.preserveOnError,
          source,
          tree: mountedTree,
        },
        session,
      ),
    );
  }
  objects.disks = opened.map((o) => o.target);
  const names = queue.map((q) => q.name);
  if (
    objects.layout &&
    !names.includes('partitioning') &&
    names.some((n) => n !== 'deploy' || source.content !== 'disk')
  ) {
    for (const [d, o] of opened.entries()) await adoptExistingTable(o.target, objects.layout.disks[d]);
  }
  return {
    objects,
    queue,
    confirm: async () => {
      for (const o of opened) await confirmOverwrite(o.info, input.yes);
    },
  };
}

/**
 * bareon-deploy: the request becomes the shared objects and the deploy pipeline, which runs. Whole-
 * disk images run `deploy` (and `configdrive`); rootfs tarballs and filesystem images run the layout
 * chain (partitioning → filesystems → deploy → fstab → bootloader), with the actions asked for.
 */
export async function deployCommand(input: DeployInput, session: Session): Promise<void> {
  const registry = await PluginRegistry.discover();
  const { objects, queue, confirm } = await prepareDeploy(input, registry, session);
  await runPlugins({
    registry,
    queue,
    objects,
    flags: { dryRun: input.dryRun, yes: input.yes, noCache: false },
    confirm,
    ...session,
  });
  // a sha512 is checked on the source's stream: a deploy that stopped reading early verified nothing
  const { source, deploy } = objects;
  const deployed = !input.dryRun && queue.some((q) => q.name === 'deploy');
  if (deployed && deploy?.verify && source?.sha512Checked && !source.sha512Checked())
    throw new BareonError(`source ${source.uri}: its sha512 was not checked: the deploy did not read it to its end`, {
      hint: 'give its sha256 instead (--checksum sha256:HEX); the target was not left bootable',
    });
}
