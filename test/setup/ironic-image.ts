import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildImage, REPO } from '../helpers/cli.js';
import { IMAGES_DIR } from './bootable-images.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The container image holding a stock Ironic (test/fixtures/profiles/ironic-standalone.yaml). */
    ironicImage: { image: string; buildSeconds: number };
  }
}

/**
 * Builds the stock Ironic of Debian 12 into a container image with bareon itself, once per run (the
 * step cache makes later runs a matter of seconds); the Ironic tests start their own container from it.
 */
export default async function buildIronicImage(project: TestProject): Promise<void> {
  const out = path.join(IMAGES_DIR, 'ironic');
  await mkdir(out, { recursive: true });
  const started = Date.now();
  const profile = path.join(REPO, 'test/fixtures/profiles/ironic-standalone.yaml');
  await buildImage(profile, out);
  const manifest = JSON.parse(await readFile(path.join(out, 'ironic-standalone.manifest.json'), 'utf8')) as {
    image: string;
  };
  const buildSeconds = (Date.now() - started) / 1000;
  console.log(`test setup: Ironic image ${manifest.image.slice(0, 19)} in ${buildSeconds.toFixed(1)}s`);
  project.provide('ironicImage', { image: manifest.image, buildSeconds });
}
