import path from 'node:path';
import { runPlugins } from '../../core/manager.js';
import { PluginRegistry } from '../../core/plugins/registry.js';
import type { QueueEntry } from '../../core/plugins/types.js';
import { loadProfile, type Objects, type Profile } from '../../objects/index.js';
import type { Session } from '../session.js';

/** The queue a build runs: its builder, one exporter per output, then the manifest. */
export function buildQueue(profile: Profile, profileFile: string): QueueEntry[] {
  const file = path.basename(profileFile);
  return [
    { namespace: 'bareon.builders', name: profile.builder, origin: `${file} builder` },
    ...profile.outputs.map((output, i): QueueEntry => {
      const { format, ...options } = typeof output === 'string' ? { format: output } : output;
      return { namespace: 'bareon.exporters', name: format, options, origin: `${file} outputs[${i}]` };
    }),
    { namespace: 'bareon.actions', name: 'manifest' },
  ];
}

export async function buildCommand(profileFile: string, opts: { outDir: string; noCache: boolean; dryRun: boolean }, session: Session): Promise<void> {
  const { profile, layout, layoutFile } = await loadProfile(profileFile);
  const profileDir = path.dirname(path.resolve(profileFile));
  const objects: Objects = { profile, profileFile: path.resolve(profileFile), layout, layoutFile, outDir: path.resolve(opts.outDir), artifacts: [] };
  const registry = await PluginRegistry.discover({ extraDirs: profile.plugins.map((p) => path.resolve(profileDir, p)) });
  await runPlugins({
    registry,
    queue: buildQueue(profile, profileFile),
    objects,
    flags: { dryRun: opts.dryRun, yes: false, noCache: opts.noCache },
    ...session,
  });
}
