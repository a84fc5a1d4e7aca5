import type { SourceClaim, SourceProbe } from '../objects/index.js';
import type { PluginRegistry } from './registry.js';

/**
 * Asks each installed deployer with a `claims` hook about a source bareon does not recognise; the
 * first to claim it deploys it. Deployers are loaded only when a source needs this.
 */
export async function claimSource(
  registry: PluginRegistry,
  probe: SourceProbe,
): Promise<(SourceClaim & { deployer: string }) | undefined> {
  for (const decl of registry.declared) {
    if (decl.namespace !== 'bareon.deployers') continue;
    const loaded = await registry.tryLoad(decl);
    const claim = loaded.ok ? loaded.plugin.claims?.(probe) : undefined;
    if (claim) return { ...claim, deployer: decl.name };
  }
  return undefined;
}
