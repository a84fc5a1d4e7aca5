import { canonicalJson, sha256 } from '../core/digest.js';
import { CACHE_KEY_LABEL, type DockerEngine } from '../docker/engine.js';
import type { BuildStep } from './build-step.js';

/** A step's cache key: sha256 of the parent key, the step kind, its canonical options and local contents. */
export function stepKey(parentKey: string, step: BuildStep, contentDigest = ''): string {
  return sha256(parentKey, '\0', step.kind, '\0', canonicalJson(step.options), '\0', contentDigest);
}

/** The base's key: the image id pins its contents exactly; a build epoch changes what every step writes. */
export function baseKey(baseImageId: string, epoch?: number): string {
  return epoch === undefined
    ? sha256('base\0', baseImageId)
    : sha256('base\0', baseImageId, '\0epoch\0', String(epoch));
}

/** The newest image committed for `key`, if any. */
export async function findCachedStep(engine: DockerEngine, key: string): Promise<string | undefined> {
  const images = await engine.listImages(`${CACHE_KEY_LABEL}=${key}`);
  images.sort((a, b) => b.Created - a.Created);
  return images[0]?.Id;
}
