import type { Objects } from 'bareon/plugin';

/**
 * Whether the layout chain has work: a layout to lay out and a source that is not a whole disk
 * (a disk image brings its own partitions, filesystems and bootloader).
 */
export const onLayout = (objects: Objects): boolean => !!objects.layout && objects.source?.content !== 'disk';
