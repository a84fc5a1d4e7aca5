import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import HeavyFirstSequencer from './test/setup/sequencer.js';

/**
 * Integration tests that need neither Docker nor QEMU: image files, loop devices, sgdisk and mkfs.
 * They run one at a time, in a pool of their own beside the Docker builds and VMs, which also run
 * one at a time.
 */
const LOCAL = [
  'deploy',
  'kept-partitions',
  'qcow2-reader',
  'configdrive',
  'agent-jobs',
  'disk-hints',
  'plugin-walkthrough',
  'fuzz-qcow2',
  'fuzz-tar',
  'hostile-rootfs',
  'hostile-sources',
  'target-faults',
  'sigint-sweep',
  'teardown-races',
  'out-of-tree',
  'signed-manifest',
  'ironic-agent',
  'bmap',
].map((n) => `test/integration/${n}.test.ts`);

/** The images the e2e tier boots and deploys, built (or found in the cache) before its first file. */
const E2E_SETUP = [
  'test/setup/images.ts',
  'test/setup/bootable-images.ts',
  'test/setup/agent-image.ts',
  'test/setup/ironic-image.ts',
];

// Tiers: unit (no privileges, parallel), integration (real Docker, disks; serial), integration-local
// (disks only; serial), e2e (QEMU boots, the deploy agent's jobs among them; serial), and podman
// (the build tests and a bootable image through Podman's socket). Unit and integration-local run in
// threads, beside the serial forks of the heavy tiers.
// Heavy tiers share built images through test/setup/images.ts.
export default defineConfig({
  // in-tree plugins import bareon by its package name, as out-of-tree ones do; Node resolves that
  // through package.json "exports" in dist, and tests that load the TypeScript sources need the same map
  resolve: {
    alias: [
      { find: /^bareon$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
      {
        find: /^bareon\/(plugin|disk|stream|containers)$/,
        replacement: fileURLToPath(new URL('./src/api/$1.ts', import.meta.url)),
      },
    ],
  },
  test: {
    globalSetup: ['test/setup/compile.ts'],
    setupFiles: ['test/setup/private-tmp.ts'],
    sequence: { sequencer: HeavyFirstSequencer },
    projects: [
      {
        extends: true,
        // threads: `make test` runs them in a vitest run of its own, beside the heavy one (see the Makefile)
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], pool: 'threads', testTimeout: 60_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: LOCAL,
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 600_000,
          hookTimeout: 900_000,
          globalSetup: ['test/setup/images.ts'],
        },
      },
      {
        extends: true,
        test: {
          // threads, one file at a time: `make test` runs it with the unit tier, beside the heavy projects
          name: 'integration-local',
          include: LOCAL,
          pool: 'threads',
          poolOptions: { threads: { singleThread: true } },
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 900_000,
          hookTimeout: 900_000,
          globalSetup: E2E_SETUP,
        },
      },
      {
        extends: true,
        test: {
          // the agent as the deploy ramdisk of a stock Ironic, alone (make test-ironic)
          name: 'ironic',
          include: ['test/e2e/ironic.test.ts'],
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 900_000,
          hookTimeout: 900_000,
          globalSetup: E2E_SETUP,
        },
      },
      {
        extends: true,
        test: {
          // the deploy agent's jobs alone (make test-agent), without the other e2e tests' images
          name: 'agent',
          include: ['test/e2e/agent.test.ts'],
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 900_000,
          hookTimeout: 900_000,
          globalSetup: ['test/setup/images.ts', 'test/setup/agent-image.ts'],
        },
      },
      {
        extends: true,
        test: {
          // the build tests again, and a bootable disk image, through Podman's Docker-compatible socket
          name: 'podman',
          include: ['test/integration/build.test.ts', 'test/podman/**/*.test.ts'],
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 900_000,
          hookTimeout: 900_000,
          globalSetup: ['test/setup/podman.ts', 'test/setup/images.ts'],
        },
      },
    ],
  },
});
