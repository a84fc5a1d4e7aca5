import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

describe('the package root, for plugin authors', () => {
  it('exports definePlugin, the shared schemas, errors and the Docker adapter', async () => {
    const api = await import(`${REPO}/dist/src/index.js`);
    for (const name of [
      'definePlugin',
      'ProfileSchema',
      'LayoutSchema',
      'ManifestSchema',
      'ArtifactSchema',
      'BootloaderSchema',
      'ConfigDriveSchema',
      'ValidationError',
      'BareonError',
      'DockerEngine',
      'CleanupStack',
      'loadProfile',
      'parseSize',
      'rootTree',
      'resolveInRoot',
      'writeFileInRoot',
      'RootPathError',
    ]) {
      expect(api[name], name).toBeDefined();
    }
    const plugin = { summary: 's', async run() {} };
    expect(api.definePlugin(plugin)).toBe(plugin);
    expect(api.NAMESPACES).toEqual([
      'bareon.drivers',
      'bareon.builders',
      'bareon.exporters',
      'bareon.deployers',
      'bareon.actions',
    ]);
  });
});
