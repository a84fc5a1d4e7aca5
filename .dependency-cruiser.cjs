/**
 * bareon's import rules, checked by `make lint` (test/unit/dependency-rules.test.ts shows they fire).
 *
 * 1. In-tree plugins (actions/, builders/) reach bareon only through its public API, the package
 *    name and its subpaths ("bareon", "bareon/plugin", "bareon/disk", "bareon/stream", "bareon/containers"), as an
 *    out-of-tree plugin does.
 * 2. The folders of src/ are layers: each imports only from the layers below it, so no import
 *    cycle between folders can form. The order is documented in docs/architecture.md.
 */
const LAYERS = [
  'core',
  'stream',
  'objects',
  'docker',
  'rootfs',
  'plugins',
  'build',
  'disk',
  'source',
  'host',
  'configdrive',
  'deploy',
  'diff',
  'agent',
  'api',
  'cli',
];

const layerRules = LAYERS.map((layer, i) => ({
  name: `layer-${layer}`,
  severity: 'error',
  comment: `src/${layer} may import only from the layers below it: ${LAYERS.slice(0, i).join(', ') || '(none)'}`,
  from: { path: `^src/${layer}/` },
  to: {
    path: `^src/(${LAYERS.slice(i)
      .filter((l) => l !== layer)
      .join('|')})/`,
  },
}));

module.exports = {
  forbidden: [
    {
      name: 'plugin-uses-internal-module',
      severity: 'error',
      comment:
        "an in-tree plugin imports bareon's internals: import from 'bareon' or a public subpath (bareon/plugin, bareon/disk, bareon/stream, bareon/containers) instead, as out-of-tree plugins must",
      from: { path: '^(actions|builders)/' },
      to: { path: '^(src|dist)/', pathNot: '^(src|dist/src)/(index|api/[a-z]+)\\.(ts|js|d\\.ts)$' },
    },
    {
      name: 'plugin-import-unresolvable',
      severity: 'error',
      comment:
        "an in-tree plugin's import does not resolve: only bareon's public subpaths are exported (build first: they resolve to dist/)",
      from: { path: '^(actions|builders)/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'src-imports-plugin',
      severity: 'error',
      comment: 'the core never imports a plugin: plugins are found through package.json entry points',
      from: { path: '^src/' },
      to: { path: '^(actions|builders)/' },
    },
    {
      name: 'unknown-layer',
      severity: 'error',
      comment: 'a new folder under src/ must take its place among the layers in .dependency-cruiser.cjs',
      from: { path: '^src/[^/]+/', pathNot: `^src/(${LAYERS.join('|')})/` },
      to: {},
    },
    ...layerRules,
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'modules must not import each other in a cycle (type-only imports aside: they vanish from the JavaScript)',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    // "bareon" and its subpaths resolve, through package.json "exports", to dist/: seen, not followed
    doNotFollow: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    preserveSymlinks: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'default'],
      mainFields: ['types', 'main'],
    },
  },
};
