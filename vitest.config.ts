import { defineConfig } from 'vitest/config';

// Tiers: unit (no privileges, parallel), integration (real Docker, disks; serial), e2e (QEMU
// boots, the deploy agent's jobs among them; serial), and podman (the build tests and a bootable
// image through Podman's socket).
// Heavy tiers share built images through test/setup/images.ts.
export default defineConfig({
  test: {
    globalSetup: ['test/setup/compile.ts'],
    setupFiles: ['test/setup/private-tmp.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 900_000,
          globalSetup: ['test/setup/images.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 900_000,
          globalSetup: ['test/setup/images.ts', 'test/setup/bootable-images.ts', 'test/setup/agent-image.ts'],
        },
      },
      {
        extends: true,
        test: {
          // the deploy agent's jobs alone (make test-agent), without the other e2e tests' images
          name: 'agent',
          include: ['test/e2e/agent.test.ts'],
          fileParallelism: false,
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
          fileParallelism: false,
          testTimeout: 900_000,
          hookTimeout: 900_000,
          globalSetup: ['test/setup/podman.ts', 'test/setup/images.ts'],
        },
      },
    ],
  },
});
