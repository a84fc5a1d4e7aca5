import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../core/errors.js';
import type { Readable } from 'node:stream';
import { LayoutSchema, type Layout, type Partition } from './layout.js';
import type { ConfigDriveRequest } from './configdrive.js';
import { ProfileSchema, type Profile } from './profile.js';
import type { Artifact, InstalledPackage } from './artifact.js';
import { parseWith, rememberOrigin, YamlSource } from './yaml-source.js';
import type { DiskExecutor } from '../core/disk-executor.js';
import type { DiskGeometry } from './geometry.js';
import type { DeployRequest, DeploySource } from './deploy.js';

export * from './artifact.js';
export * from './configdrive.js';
export * from './configdrive-schema.js';
export * from './disk-match.js';
export * from './deploy.js';
export * from './layout.js';
export * from './profile.js';
export * from '../core/size.js';
export * from './size-field.js';
export { formatPath, parseWith, YamlSource } from './yaml-source.js';

/** One build step's outcome: a cache hit (reused image) or a run. */
export interface StepOutcome {
  title: string;
  kind: string;
  key: string;
  cached: boolean;
  image: string;
  ms: number;
}

/** What a builder did: set by the builder, read by exporters (toolbox base) and the manifest. */
export interface BuildRecord {
  builder: string;
  baseImage: string;
  packageManager: string;
  steps: StepOutcome[];
}

/** How a tool reaches one partition: a byte offset into the disk, or a device of its own (offset 0). */
export interface PartitionRef {
  path: string;
  offset: number;
  size: number;
  /** A block device holding just this partition (a kernel partition node or an offset loop device). */
  device: boolean;
}

/** A disk being written: an image file in the toolbox, or a block device or image file on this host. */
export interface DiskTarget {
  /** The layout's disk id. */
  id: string;
  /** The disk as the executor sees it. */
  path: string;
  size: number;
  executor: DiskExecutor;
  /** image: a disk image in the toolbox; file or block: a deploy target on this host. */
  kind: 'image' | 'file' | 'block';
  /** Bytes from this offset on read back as zeros without being written (a new or extended file); Infinity when unknown. */
  zeroFrom: number;
  /** Set by the partitioning action, or by the driver from the table already on the disk. */
  geometry?: DiskGeometry;
  /** Image builds: the root filesystem tree (as the executor sees it) that the filesystems are made from. */
  stagedRoot?: string;
  /** Where a whole-disk image written onto this disk ends (its own backup GPT lies there). */
  imageEnd?: number;
  /** Creates or extends an image file target to `size`; a no-op for devices. Idempotent. */
  prepare(): Promise<void>;
  /** How tools reach a partition of `geometry`. */
  partition(number: number): Promise<PartitionRef>;
  /** The root tree to write files into: the staged tree (images) or the mounted filesystems (deploy). */
  rootDir(): Promise<string>;
  /** A directory for scratch files, as the executor sees it. */
  scratchDir(): Promise<string>;
}

/** A root filesystem produced by a builder, readable as a tar stream as many times as exporters need. */
export interface RootfsSource {
  /** The container image holding the finished root filesystem. */
  image: string;
  /** Sum of the file sizes in the tree, used to size filesystem images. */
  apparentSize?: number;
  /** Packages installed in the tree (name, version, arch). */
  packages?: InstalledPackage[];
  /** What first-boot hygiene dropped from the last export (absolute paths). */
  removed?: string[];
  /** Opens a cleaned tar stream of the tree (Docker artifacts removed, hostname files written). */
  open(signal?: AbortSignal): Promise<Readable>;
}

/**
 * The shared data model. Every queued plugin sees the same object: `plan` may add to it,
 * `validate` checks it, `run` reads and extends it (a builder sets `rootfs`, exporters push `artifacts`).
 */
export interface Objects {
  profile?: Profile;
  /** The profile file, for resolving relative paths and for error messages. */
  profileFile?: string;
  layout?: Layout;
  layoutFile?: string;
  /** The build's fixed time (seconds since 1970): SOURCE_DATE_EPOCH or the profile's epoch. */
  epoch?: number;
  /** Where build artifacts go. */
  outDir?: string;
  /** A block device or image file for deploy and combined runs. */
  target?: string;
  rootfs?: RootfsSource;
  build?: BuildRecord;
  /** Disks being written, in layout order (set by image exporters or deploy). */
  disks?: DiskTarget[];
  /** What bareon-deploy writes, and how. */
  source?: DeploySource;
  deploy?: DeployRequest;
  artifacts: Artifact[];
  /** The config drive this run writes (the configdrive action), from flags or a configdrive: section. */
  configDrive?: ConfigDriveRequest;
  /** Partitions actions ask of the disk during plan; partitioning lays them out, --grow leaves their room. */
  reservations?: DiskReservation[];
  /** Slots declared by plugins, each with a schema (see defineSlot): reach them through their Slot. */
  slots?: Map<string, unknown>;
  /** bareon-build --sign: the SSH key (a private key file, or a .pub held by ssh-agent) that signs the manifest. */
  signing?: { key: string };
}

/** A partition an action asks for during plan (configdrive: its 64 MiB drive at the end of the disk). */
export interface DiskReservation {
  /** The action that asks. */
  by: string;
  /** The partition, added last to the layout's first disk by partitioning. */
  partition: Partition;
}

/** Reads and validates a profile; a `layout:` file reference is loaded and validated too. */
export async function loadProfile(file: string): Promise<{ profile: Profile; layout?: Layout; layoutFile?: string }> {
  const source = await YamlSource.load(file);
  const profile = parseWith(ProfileSchema, source.toJS(), { source, label: file });
  if (typeof profile.layout === 'string') {
    const layoutFile = path.resolve(path.dirname(file), profile.layout);
    if (!(await stat(layoutFile).catch(() => undefined))?.isFile()) {
      throw new ValidationError(`${source.locate(['layout'])}: layout: no layout file ${layoutFile}`, {
        hint: 'the path is relative to the profile; or give the layout inline',
      });
    }
    return { profile, layout: await loadLayout(layoutFile), layoutFile };
  }
  if (profile.layout) rememberOrigin(profile.layout, source, ['layout']);
  return { profile, layout: profile.layout };
}

export async function loadLayout(file: string): Promise<Layout> {
  const source = await YamlSource.load(file);
  const layout = parseWith(LayoutSchema, source.toJS(), { source, label: file });
  rememberOrigin(layout, source);
  return layout;
}

/** Tells a layout file from a profile by its top-level keys. */
export async function detectDocumentKind(file: string): Promise<'layout' | 'profile'> {
  const value = (await YamlSource.load(file)).toJS();
  return value && typeof value === 'object' && 'disks' in value ? 'layout' : 'profile';
}
export * from './slots.js';
export * from './fields.js';
