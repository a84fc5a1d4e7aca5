import { PluginRegistry } from '../../core/plugins/registry.js';
import { runPlugins } from '../../core/manager.js';
import { loadLayout, type Objects } from '../../objects/index.js';
import type { Session } from '../session.js';

export interface RunCommandOptions {
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
  await runPlugins({
    registry,
    queue: actions.map((name) => ({ namespace: 'bareon.actions', name })),
    objects,
    flags: { dryRun: opts.dryRun, yes: opts.yes, noCache: false },
    ...session,
  });
}
