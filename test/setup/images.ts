import { execa } from 'execa';
import { bootstrapBase } from '../../src/docker/base-image.js';
import { DockerEngine } from '../../src/docker/engine.js';
import { bareonContainers } from '../helpers/docker.js';
import { TEST_BASE } from '../helpers/images.js';

/**
 * Shared by the heavy tiers: the Debian base image every Docker test starts from, bootstrapped with
 * mmdebstrap and imported (no registry is reachable). Reused when it already exists.
 */
export default async function ensureImages(): Promise<void> {
  await removeStaleContainers();
  const engine = await DockerEngine.connect('test-setup');
  const started = Date.now();
  const base = await bootstrapBase(engine, TEST_BASE, { alsoTag: 'bareon-test/debian:bookworm' });
  console.log(`test setup: base ${base.ref} ${base.how} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

/**
 * Containers of bareon runs that an earlier test run left when it was killed (its machine stopped
 * mid-test, or a failed assertion left a build running): the tests count bareon's containers to
 * prove that a run leaves none, so those of other runs would fail them.
 */
async function removeStaleContainers(): Promise<void> {
  const ids = await bareonContainers();
  if (!ids.length) return;
  await execa('docker', ['rm', '-f', ...ids], { reject: false });
  console.log(`test setup: removed ${ids.length} container(s) that earlier runs left: ${ids.join(' ')}`);
}
