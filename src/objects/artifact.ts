import { z } from 'zod';

/** Where a partition of a disk image lies, and what it holds: enough for deploy to find it again. */
export const ArtifactPartitionSchema = z.strictObject({
  number: z.number().int().positive(),
  type: z.string(),
  offset: z.number().int().nonnegative(),
  size: z.number().int().positive(),
  uuid: z.string().optional(),
  fs: z.strictObject({ type: z.string(), uuid: z.string().optional(), label: z.string().optional() }).optional(),
  mount: z.string().optional(),
});

export const ArtifactSchema = z.strictObject({
  /** A path relative to the manifest, an absolute path, or an http(s) URL. */
  uri: z.string().min(1),
  format: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Virtual size of a disk image. */
  virtual_size: z.number().int().positive().optional(),
  table: z.enum(['gpt', 'msdos']).optional(),
  /** Digest of what the artifact was made from; an unchanged rebuild reuses an artifact with the same inputs. */
  inputs: z.string().optional(),
  partitions: z.array(ArtifactPartitionSchema).optional(),
});

export const PackageSchema = z.strictObject({ name: z.string(), version: z.string(), arch: z.string() });

export const ManifestSchema = z.strictObject({
  manifest_version: z.literal(1),
  name: z.string(),
  created: z.string(),
  /** The build's fixed time (SOURCE_DATE_EPOCH), when it had one: every timestamp is clamped to it. */
  epoch: z.number().int().nonnegative().optional(),
  profile_digest: z.string(),
  base_image: z.string(),
  /** The container image holding the built root filesystem. */
  image: z.string(),
  builder: z.string(),
  artifacts: z.array(ArtifactSchema),
  packages: z.array(PackageSchema),
  /** How the build went: each step's title, cache key and whether it was a cache hit. */
  steps: z
    .array(z.strictObject({ title: z.string(), key: z.string(), cached: z.boolean(), seconds: z.number() }))
    .default([]),
  /** First-boot hygiene: the items kept by the profile, and the files removed from the root filesystem. */
  hygiene: z.strictObject({ kept: z.array(z.string()), removed: z.array(z.string()) }).optional(),
});

export type Artifact = z.infer<typeof ArtifactSchema>;
export type ArtifactPartition = z.infer<typeof ArtifactPartitionSchema>;
export type InstalledPackage = z.infer<typeof PackageSchema>;
export type Manifest = z.infer<typeof ManifestSchema>;
