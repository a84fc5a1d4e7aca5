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
}

export function archiveStream(step: BuildStep): Readable | undefined {
  return step.archive?.length ? packEntries(step.archive) : undefined;
}
