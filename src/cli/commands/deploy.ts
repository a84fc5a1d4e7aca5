import path from 'node:path';
import { ValidationError } from '../../core/errors.js';
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
import { loadLayout, type Disk, type DiskTarget, type Layout, type Objects } from '../../objects/index.js';
import { locateIn } from '../../objects/yaml-source.js';
import { resolveSource } from '../../source/resolve.js';
import { configDriveRequest, type ConfigDriveFlags } from '../../configdrive/request.js';
import type { Session } from '../session.js';

/** The deploy actions, in the order they run on a disk. */
export const DEPLOY_ACTIONS = [
  'partitioning',
  'raid',
  'lvm',
  'filesystems',
  'deploy',
  'fstab',
  'initramfs',
  'bootloader',
  'configdrive',
] as const;

/** Whether an action of the layout chain has work in this layout (raid, lvm and initramfs only for md and LVM). */
export function actionApplies(name: string, layout: Layout | undefined): boolean {
  if (name === 'raid') return !!layout?.raids.length;
  if (name === 'lvm') return !!layout?.volume_groups.length;
  if (name === 'initramfs') return !!(layout?.raids.length || layout?.volume_groups.length);
  if (name === 'bootloader') return !!layout?.bootloader;
  return true;
}

/** The layout a rootfs or filesystem image gets when none is given. */
export const DEFAULT_DEPLOY_LAYOUT = 'profiles/layouts/bios-uefi-gpt.yaml';

export interface DeployOptions extends ConfigDriveFlags {
  layout?: string;
  only?: string;
  skip?: string;
  size?: string;
  format?: string;
  checksum?: string;
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

function actionList(value: string | undefined, flag: string): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(DEPLOY_ACTIONS as readonly string[]).includes(n));
  if (unknown.length)
    throw new ValidationError(`${flag}: unknown action(s) ${unknown.join(', ')}`, {
      hint: `deploy actions: ${DEPLOY_ACTIONS.join(', ')}`,
    });
  return names;
}

function checksumOption(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(value.trim());
  if (!m) throw new ValidationError(`--checksum: expected sha256:<64 hex digits>, got "${value}"`);
  return m[1].toLowerCase();
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
  opts: DeployOptions,
  session: Session,
): Promise<string[]> {
  if (!layout || layout.disks.length === 1) {
    const disk = layout?.disks[0];
    const resolved = await resolveTarget(
      targetArg ?? (opts.targetHint?.length ? undefined : disk?.device),
      opts.targetHint ?? [],
      disk?.match,
      layoutFile,
    );
    if (resolved.how) session.reporter.print(`target: ${resolved.how}`);
    return [resolved.path];
  }
  if (targetArg || opts.targetHint?.length) {
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

/**
 * bareon-deploy: the driver that turns a source, a target and flags into the shared objects, then
 * queues the deploy actions. Whole-disk images run `deploy` alone; rootfs tarballs and filesystem
 * images run the layout chain (partitioning → filesystems → deploy → fstab → bootloader).
 */
export async function deployCommand(
  sourceUri: string,
  targetArg: string | undefined,
  opts: DeployOptions,
  session: Session,
): Promise<void> {
  const only = actionList(opts.only, '--only');
  const skip = actionList(opts.skip, '--skip') ?? [];
  const source = await resolveSource(sourceUri, {
    format: opts.format,
    sha256: checksumOption(opts.checksum),
    signal: session.signal,
  });
  const registry = await PluginRegistry.discover();
  const installed = registry.names('bareon.actions');
  const layoutFile =
    opts.layout ?? (source.content !== 'disk' ? path.join(bareonPackageDir(), DEFAULT_DEPLOY_LAYOUT) : undefined);
  const layout = layoutFile ? await loadLayout(layoutFile) : undefined;
  const configDrive = await configDriveRequest(
    opts,
    layout?.configdrive && layoutFile ? { drive: layout.configdrive, file: layoutFile } : undefined,
  );
  const chain = (
    source.content === 'disk'
      ? ['deploy', 'configdrive']
      : DEPLOY_ACTIONS.filter((a) => installed.includes(a) && (a === 'bootloader' || actionApplies(a, layout)))
  ).filter((a) => a !== 'configdrive' || configDrive);
  const queue: QueueEntry[] = (only ?? chain)
    .filter((name) => !skip.includes(name))
    .map((name) => ({ namespace: 'bareon.actions', name }));
  if (queue.length === 0)
    throw new ValidationError('nothing to do: --only/--skip leave no action', {
      hint: `this source runs: ${chain.join(', ')}`,
    });

  if (opts.keepLabel?.length && !layout)
    throw new ValidationError(
      '--keep-label: a whole-disk image replaces the whole disk; kept partitions apply to rootfs and filesystem images deployed onto a layout',
    );
  const targetPaths = await layoutTargets(layout, layoutFile, targetArg, opts, session);
  const objects: Objects = {
    artifacts: [],
    target: targetPaths[0],
    source,
    configDrive,
    deploy: { verify: opts.verify, grow: opts.grow, preserveOnError: opts.preserveOnError },
  };
  if (!opts.verify) session.reporter.warn(`--no-verify: ${sourceUri} is written without checking its sha256`);
  if (layout && layoutFile) {
    objects.layoutFile = layoutFile;
    objects.layout = layout;
    keepLabels(objects.layout.disks, opts.keepLabel ?? [], layoutFile);
    // a filesystem image brings its own UUID, which fstab and GRUB must name; the others are made up
    const root = source.content === 'fs' ? rootVolume(objects.layout, layoutFile) : undefined;
    if (root?.fs && !root.fs.uuid) root.fs.uuid = ext4Uuid(source.head);
    assignIdentifiers(objects.layout);
  }
  const size = sizeOption(opts.size) ?? (source.content === 'disk' ? source.virtualSize : undefined);
  const opened: Awaited<ReturnType<typeof openHostTarget>>[] = [];
  for (const [d, targetPath] of targetPaths.entries()) {
    const sizeFrom = opts.size ? '--size' : `the image's virtual size`;
    opened.push(
      await openHostTarget(
        targetPath,
        {
          id: objects.layout?.disks[d].id ?? 'target',
          size: d === 0 ? size : undefined,
          sizeFrom,
          preserveOnError: opts.preserveOnError,
          objects,
        },
        session,
      ),
    );
  }
  objects.disks = opened.map((o) => o.target);
  // a layout without a bootloader section installs none
  if (!objects.layout?.bootloader && !only)
    queue.splice(0, queue.length, ...queue.filter((q) => q.name !== 'bootloader'));
  const names = queue.map((q) => q.name);
  if (
    objects.layout &&
    !names.includes('partitioning') &&
    names.some((n) => n !== 'deploy' || source.content !== 'disk')
  ) {
    for (const [d, o] of opened.entries()) await adoptExistingTable(o.target, objects.layout.disks[d]);
  }

  await runPlugins({
    registry,
    queue,
    objects,
    flags: { dryRun: opts.dryRun, yes: opts.yes, noCache: false },
    confirm: async () => {
      for (const o of opened) await confirmOverwrite(o.info, opts.yes);
    },
    ...session,
  });
}
