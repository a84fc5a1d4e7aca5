import { CACHE_KEY_LABEL, CACHE_PROFILE_LABEL, type DockerEngine, RUN_LABEL } from '../../docker/engine.js';
import type Docker from 'dockerode';
import { APT_ARCHIVE_VOLUME } from '../../build/build-step.js';
import { ValidationError } from '../../core/errors.js';
import { formatBytes, parseSize } from '../../core/size.js';

export interface GcOptions {
  /** Cache images older than this many ms are removed. */
  maxAgeMs: number;
  /** Then the oldest cache images are removed until the cache is under this many bytes. */
  maxSize: number;
  /** Only the cache of this profile. */
  profile?: string;
  /** Keep the shared apt archive cache (a Docker volume of downloaded .deb files). */
  keepAptCache?: boolean;
}

export interface GcResult {
  containers: number;
  images: number;
  cacheRemoved: number;
  cacheKept: number;
  cacheBytes: number;
}

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };

/** "14d", "12h", "30m", "0s" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!m)
    throw new ValidationError(`"${text}" is not a duration`, { hint: 'use a number with s, m, h, d or w, e.g. 14d' });
  return Number(m[1]) * UNITS[m[2]];
}

export function parseBudget(text: string): number {
  const size = parseSize(text);
  if (typeof size === 'string' || size.kind !== 'bytes')
    throw new ValidationError(`--max-size: ${typeof size === 'string' ? size : 'use an absolute size such as 20GiB'}`);
  return size.bytes;
}

/**
 * Tries each image in order, again and again while a pass removes something: an image that pins a
 * child (Docker refuses with 409) may be removable once its child is gone, and creation times have
 * one-second granularity so order alone cannot tell parents from children.
 */
async function removeInPasses(
  images: Docker.ImageInfo[],
  remove: (img: Docker.ImageInfo) => Promise<boolean>,
  done: () => boolean,
): Promise<void> {
  let pending = images;
  while (pending.length > 0 && !done()) {
    const next: Docker.ImageInfo[] = [];
    for (const img of pending) {
      if (done()) return;
      if (!(await remove(img))) next.push(img);
    }
    if (next.length === pending.length) return;
    pending = next;
  }
}

/**
 * Removes every container and temporary image labelled by a bareon run, then prunes the step cache:
 * images past the age budget, then the oldest until the size budget holds. Images other cache
 * images build on are kept (Docker refuses to remove them).
 */
export async function collectGarbage(
  engine: DockerEngine,
  opts: GcOptions,
  log: (line: string) => void,
): Promise<GcResult> {
  const containers = await engine.listLeftoverContainers();
  for (const c of containers) {
    await engine.removeContainer(c.Id);
    log(`removed container ${c.Id.slice(0, 12)} (run ${c.Labels[RUN_LABEL]})`);
  }
  const temporary = (await engine.listImages(RUN_LABEL)).filter((img) => !img.Labels?.[CACHE_KEY_LABEL]);
  let temporaryRemoved = 0;
  for (const img of temporary) {
    if (!(await engine.removeImageIfUnused(img.Id))) continue;
    temporaryRemoved++;
    log(`removed image ${img.Id.slice(7, 19)} (run ${img.Labels?.[RUN_LABEL]})`);
  }

  let cache: Docker.ImageInfo[] = await engine.listImages(
    opts.profile ? `${CACHE_PROFILE_LABEL}=${opts.profile}` : CACHE_KEY_LABEL,
  );
  cache = cache.filter((img) => img.Labels?.[CACHE_KEY_LABEL]);
  const byId = new Map(cache.map((img) => [img.Id, img]));
  const own = (img: Docker.ImageInfo) => Math.max(0, img.Size - (byId.get(img.ParentId)?.Size ?? 0));
  let total = cache.reduce((n, img) => n + own(img), 0);
  const now = Date.now();
  // newest first, so that children go before the parents they pin
  const candidates = [...cache].sort((a, b) => b.Created - a.Created);
  const expired = candidates.filter((img) => now - img.Created * 1000 > opts.maxAgeMs);
  const oldestFirst = [...candidates].reverse().filter((img) => !expired.includes(img));
  let removed = 0;
  const removeOne = async (img: Docker.ImageInfo, why: string): Promise<boolean> => {
    if (!(await engine.removeImageIfUnused(img.Id))) return false;
    removed++;
    total -= own(img);
    log(`removed cache image ${img.Id.slice(7, 19)} "${img.Labels?.['org.bareon.cache.step'] ?? ''}" (${why})`);
    return true;
  };
  await removeInPasses(
    expired,
    (img) => removeOne(img, 'older than the age budget'),
    () => false,
  );
  await removeInPasses(
    oldestFirst,
    (img) => removeOne(img, 'over the size budget'),
    () => total <= opts.maxSize,
  );
  log(`cache: ${cache.length - removed} image(s), about ${formatBytes(total)}`);
  if (!opts.keepAptCache && !opts.profile) {
    log(
      (await engine.removeVolumeIfUnused(APT_ARCHIVE_VOLUME))
        ? `removed the apt archive cache (volume ${APT_ARCHIVE_VOLUME}); the next build downloads again`
        : `kept the apt archive cache: a build is using it`,
    );
  }
  return {
    containers: containers.length,
    images: temporaryRemoved,
    cacheRemoved: removed,
    cacheKept: cache.length - removed,
    cacheBytes: total,
  };
}
