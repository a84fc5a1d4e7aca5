/**
 * `bareon/stream`: sources and the streams that carry them onto a target, for deployers and
 * exporters: opening and decompressing artifacts, format magic, the qcow2 reader, tar filtering,
 * checksums, the disk writer with progress, and artifact files written atomically.
 */
export * from '../stream/artifact-writer.js';
export * from '../stream/disk-writer.js';
export * from '../stream/tool-stage.js';
export * from '../stream/zstd-head-frame.js';
export * from '../source/decompress.js';
export * from '../source/magic.js';
export * from '../source/qcow2-head.js';
export * from '../source/qcow2-map.js';
export * from '../deploy/checksum.js';
export * from '../deploy/grow.js';
export * from '../deploy/qcow2-direct.js';
export * from '../deploy/qcow2-stream.js';
export * from '../deploy/request.js';
export * from '../deploy/zstd-direct.js';
export * from '../rootfs/cpio.js';
export * from '../rootfs/extract-guard.js';
export * from '../rootfs/tar-filter.js';
export * from '../rootfs/tar-to-newc.js';
export * from '../deploy/disk-stream.js';
export * from '../stream/bmap.js';
export * from '../deploy/bmap-write.js';
