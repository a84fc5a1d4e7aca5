import type { Objects } from './index.js';
import { SLOT_NAME } from './slots.js';

/**
 * Every field of the shared objects, with what it holds: the names a plugin's `reads` and `writes`
 * may use besides slots ("package/name"). The compiler keeps this list and `Objects` in step.
 */
export const OBJECT_FIELDS = {
  profile: 'the profile being built',
  profileFile: 'the profile file',
  layout: 'the disk layout',
  layoutFile: 'the layout file',
  epoch: "the build's fixed time",
  outDir: 'where build artifacts go',
  target: 'the block device or image file of a deploy',
  rootfs: "the builder's root filesystem",
  build: 'what the builder did (base image, steps)',
  disks: 'the disks being written',
  source: 'what a deploy writes',
  deploy: 'how a deploy writes (verify, grow, preserve on error)',
  artifacts: 'artifacts written so far',
  configDrive: 'the config drive to write',
  reservations: 'partitions actions ask of the disk',
  slots: 'slots declared by plugins',
  signing: 'the key that signs the manifest (--sign)',
} as const satisfies Record<keyof Objects, string>;

/** Whether `name` is a field of the objects or a slot name ("package/name"). */
export function isObjectName(name: string): boolean {
  return Object.hasOwn(OBJECT_FIELDS, name) || SLOT_NAME.test(name);
}
