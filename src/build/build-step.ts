import type { Readable } from 'node:stream';
import { packEntries, type ArchiveEntry } from '../rootfs/file-archive.js';

/** One cached unit of a build: a shell script run in a container from the previous step's image. */
export interface BuildStep {
  kind: string;
  title: string;
  /** Everything that defines the step's result besides local file contents; part of the cache key. */
  options: unknown;
  script: string;
  /** Files copied into the container before the script runs. */
  archive?: ArchiveEntry[];
  /** Docker volumes mounted while the step runs: caches shared between builds, never committed. */
  cacheVolumes?: { volume: string; target: string }[];
}

/** The Docker volume that keeps downloaded .deb files between builds (see `bareon gc`). */
export const APT_ARCHIVE_VOLUME = 'bareon-apt-archives';

export function archiveStream(step: BuildStep): Readable | undefined {
  return step.archive?.length ? packEntries(step.archive) : undefined;
}
