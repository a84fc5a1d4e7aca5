/**
 * `bareon/containers`: root filesystems built in containers, for builders and exporters: the
 * Docker Engine adapter, base images, cached build steps, package managers, a container's
 * filesystem read as a stream, and the image's package database as a CycloneDX SBOM.
 */
export * from '../docker/engine.js';
export * from '../docker/base-image.js';
export * from '../build/artifact-reuse.js';
export * from '../build/build-step.js';
export * from '../build/epoch.js';
export * from '../build/package-manager.js';
export * from '../build/step-cache.js';
export * from '../build/step-runner.js';
export * from '../rootfs/container-rootfs.js';
export * from '../rootfs/file-archive.js';
export * from '../rootfs/image-packages.js';
export * from '../rootfs/sbom.js';
