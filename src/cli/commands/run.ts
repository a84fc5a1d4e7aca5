import { PluginRegistry } from '../../plugins/registry.js';
import { runPlugins } from '../../plugins/manager.js';
import { loadLayout, type Objects } from '../../objects/index.js';
import { configDriveRequest, type ConfigDriveFlags } from '../../configdrive/request.js';
import type { TargetInfo } from '../../host/disk-target.js';
import { layoutTreeOnce } from '../../host/layout-tree.js';
import type { Session } from '../session.js';
import { confirmOverwrite, openHostTarget } from './host-target.js';

export interface RunCommandOptions extends ConfigDriveFlags {
  layout?: string;
  target?: string;
  yes: boolean;
  dryRun: boolean;
}

/** `bareon run ACTION...`: runs bareon.actions plugins in the given order against one set of objects. */
export async function runActions(actions: string[], opts: RunCommandOptions, session: Session): Promise<void> {
  const registry = await PluginRegistry.discover();
  const objects: Objects = { artifacts: [], target: opts.target };
  if (opts.layout) {
    objects.layout = await loadLayout(opts.layout);
    objects.layoutFile = opts.layout;
  }
  objects.configDrive = await configDriveRequest(
    opts,
    objects.layout?.configdrive ? { drive: objects.layout.configdrive, file: opts.layout! } : undefined,
  );
  let info: TargetInfo | undefined;
  if (opts.target) {
    // actions run on disks that may already hold an OS: a failure keeps their tables
    const opened = await openHostTarget(
      opts.target,
      {
        id: objects.layout?.disks[0].id ?? 'target',
        preserveOnError: true,
        tree: layoutTreeOnce(objects, session.cleanup, session.signal),
      },
      session,
    );
    info = opened.info;
    objects.disks = [opened.target];
  }
  await runPlugins({
    registry,
    queue: actions.map((name) => ({ namespace: 'bareon.actions', name })),
    objects,
    flags: { dryRun: opts.dryRun, yes: opts.yes, noCache: false },
    confirm: info ? () => confirmOverwrite(info, opts.yes) : undefined,
    ...session,
  });
}
