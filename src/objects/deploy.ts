import type { Readable } from 'node:stream';
import type { ConfigDrive, ConfigDriveFlags } from './configdrive.js';
import type { Layout } from './layout.js';

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
  /**
   * Expected sha512 of the source's bytes as stored (Glance's default digest): checked by the stream
   * that `open()` returns, so such a source is always streamed (no `file`, no bmap).
   */
  sha512?: string;
  /** With `sha512`: whether a stream from `open()` was read to its end and matched. */
  sha512Checked?: () => boolean;
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
  /** The bareon.deployers plugin that claimed a format bareon does not know itself (see SourceClaim). */
  deployer?: string;
  /**
   * The block map of a raw image in a local file: only the blocks it maps are written. Absent,
   * the disk-image deployer looks for one beside the file as bmaptool does; false: none (--no-bmap).
   * `from` says who named it (--bmap, a manifest), `sha256` is what that manifest records for it.
   */
  bmap?: false | { file: string; from: string; sha256?: string };
}

/** What a deployer is shown of a source whose bytes bareon does not recognise. */
export interface SourceProbe {
  uri: string;
  /** The first bytes as stored (up to 1 MiB). */
  head: Buffer;
  /** Bytes as stored, when known. */
  size?: number;
}

/** A deployer's claim on a source: what it is, and so which content the deploy chain is for. */
export interface SourceClaim {
  /** Its format name, as --format and a manifest give it ("raw.bz2"). */
  format: string;
  content: SourceContent;
  /** Bytes it expands to on disk, when the deployer can tell from the head. */
  virtualSize?: number;
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

/**
 * Everything a deploy is asked to do: one typed request, built by bareon-deploy's command line, by
 * a build to disk (`bareon-build --target`) and by the deploy agent from a job.
 */
export interface DeployInput {
  /** A path, an http(s) URL or "-"; or a source already opened (a build's root filesystem). */
  source: string | DeploySource;
  /** A block device or image file; absent when hints or the layout's match: choose the disks. */
  target?: string;
  /** A layout file, or a layout already parsed (a job's inline layout) with the file it came from. */
  layout?: string | { layout: Layout; file: string };
  /** The config drive section to use when no config drive flag is given (default: the layout's). */
  configDriveSection?: { drive: ConfigDrive; file: string };
  /** sha256:HEX of the source as stored. */
  checksum?: string;
  /** A block map for a raw source (bmaptool's format), or false for none even beside the file. */
  bmap?: string | false;
  /** An allowed-signers file: the source must be a manifest signed by one of its keys. */
  trust?: string;
  /** Where `trust` was asked for, for errors ("--trust", "job.yaml trust", the agent's own file). */
  trustOrigin?: string;
  /** What the source must be (qcow2, raw.zst, tar.zst…). */
  format?: string;
  /** Size of an image-file target ("8GiB"). */
  size?: string;
  settings: DeployRequest;
  yes: boolean;
  dryRun: boolean;
  /** KEY=VALUE hints that choose the target among this machine's disks. */
  targetHints: string[];
  /** Partitions (GPT name or filesystem label) to leave as they are. */
  keepLabels: string[];
  /** Actions to add to the deploy pipeline, with where each was asked for. */
  with: { name: string; origin: string }[];
  /** Comma-separated actions to run, or to skip. */
  only?: string;
  skip?: string;
  /** Config drive files and settings (flags win over a section). */
  configDrive: ConfigDriveFlags;
}
