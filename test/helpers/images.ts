import type { BootstrapBase } from '../../src/objects/profile.js';

/** The base the integration tests bootstrap once and share (see test/setup/images.ts). */
export const TEST_BASE: BootstrapBase = { distro: 'debian', suite: 'bookworm', variant: 'minbase', arch: 'amd64' };
/** A local tag of TEST_BASE. */
export const TEST_BASE_IMAGE = 'bareon-test/debian:bookworm';
