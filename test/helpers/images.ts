import type { BootstrapBase } from '../../src/objects/profile.js';

/** The base the integration tests bootstrap once and share (see test/setup/images.ts). */
export const TEST_BASE: BootstrapBase = { distro: 'debian', suite: 'bookworm', variant: 'minbase', arch: 'amd64' };
/** A local tag of TEST_BASE. */
export const TEST_BASE_IMAGE = 'bareon-test/debian:bookworm';

/**
 * The SOURCE_DATE_EPOCH of reproducible test builds (2026-01-01T00:00:00Z): the e2e tier's GPT image
 * is built with it, so that a second build can be compared with it byte for byte.
 */
export const TEST_EPOCH = 1767225600;
