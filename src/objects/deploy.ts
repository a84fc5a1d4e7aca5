import type { Readable } from 'node:stream';

/** What a deploy source holds. */
export type SourceContent = 'disk' | 'rootfs' | 'fs';
export type Compression = 'gz' | 'xz' | 'zst';

/** A source for bareon-deploy: a local path, an http(s) URL or stdin, with what its bytes turned out to be. */
export interface DeploySource {
  /** As given: a path, a URL, or "-". */
  uri: string;
  /** qcow2, raw, raw.zst, tar, tar.gz, tar.zst, ext4, ext4.zst… (from magic bytes, never from the name). */
  format: string;
  content: SourceContent;
  compression?: Compression;
  /** Expected sha256 of the source's bytes as stored (before decompression). */
  sha256?: string;
  /** Bytes of the source as stored, when known (file size, Content-Length, manifest). */
  size?: number;
  /** Bytes it expands to on disk (disk and filesystem images), when known. */
  virtualSize?: number;
  /**
   * A raw.zst whose first zstd frame holds only the start of the disk (as bareon-build writes it):
   * that frame's stored length and decompressed size. The rest can then be decompressed straight
   * onto the target while the head stays in memory until verified.
   */
  headFrame?: { length: number; size: number };
  /** A local file, for tools that need random access (qemu-img). */
  file?: string;
  /** The first bytes after decompression (64 KiB or more where the source has them). */
  head: Buffer;
  /** Opens the stored bytes from the start; stdin can be opened once. */
  open(signal?: AbortSignal): Promise<Readable>;
}

/** How bareon-deploy was asked to write. */
export interface DeployRequest {
  /** Verify the source's sha256 while streaming (needs a checksum from the manifest or --checksum). */
  verify: boolean;
  /** Make the last partition and its filesystem fill the disk after a whole-disk image. */
  grow: boolean;
  /** Keep a half-written disk as it is on failure (for debugging). */
  preserveOnError: boolean;
}
