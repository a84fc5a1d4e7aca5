import { bootstrapBase } from '../../src/docker/base-image.js';
import { DockerEngine } from '../../src/docker/engine.js';
import { TEST_BASE } from '../helpers/images.js';

/**
 * Shared by the heavy tiers: the Debian base image every Docker test starts from, bootstrapped with
 * mmdebstrap and imported (no registry is reachable). Reused when it already exists.
 */
export default async function ensureImages(): Promise<void> {
  const engine = await DockerEngine.connect('test-setup');
  const started = Date.now();
  const base = await bootstrapBase(engine, TEST_BASE, { alsoTag: 'bareon-test/debian:bookworm' });
  console.log(`test setup: base ${base.ref} ${base.how} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}
