/**
 * `bareon/disk`: disks, partitions and targets for plugins that lay out or finish a disk: geometry
 * and partition tables, identifiers, layout checks, the host's disk tools (loop devices, mounts,
 * LVM and md), paths inside a deployed root, and the config drive's pieces.
 */
export * from '../disk/geometry.js';
export * from '../disk/identifiers.js';
export * from '../disk/kernel-names.js';
export * from '../disk/layout-checks.js';
export * from '../disk/kept-partitions.js';
export * from '../disk/old-signatures.js';
export * from '../disk/partition-table.js';
export * from '../disk/partition-types.js';
export * from '../disk/storage-commands.js';
export * from '../disk/targets.js';
export * from '../disk/ext4-times.js';
export * from '../disk/grub-bios.js';
export * from '../disk/image-workspace.js';
export * from '../host/executor.js';
export * from '../host/layout-tree.js';
export * from '../host/loop.js';
export * from '../host/mount.js';
export * from '../host/storage-tools.js';
export * from '../source/head-table.js';
export * from '../configdrive/content.js';
export * from '../configdrive/filesystem.js';
export * from '../configdrive/partition.js';
export * from '../disk/reservations.js';
