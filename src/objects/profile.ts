import { z } from 'zod';
import { HygieneSchema } from './hygiene.js';
import { ConfigDriveSchema } from './configdrive-schema.js';
import { LayoutSchema } from './layout.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits, ".", "_" and "-"');

/** A base built by bootstrapping a distribution (mmdebstrap), or reused when the same inputs were built before. */
export const BootstrapBaseSchema = z.strictObject({
  distro: z.enum(['debian', 'ubuntu']).default('debian'),
  suite: z.string().min(1),
  variant: z.enum(['minbase', 'essential', 'apt', 'required', 'important', 'standard']).default('minbase'),
  mirror: z.url().optional(),
  components: z.array(z.string()).optional(),
  arch: z.string().default('amd64'),
});

/** A base taken from a container image reference (local, or pulled). */
export const ImageBaseSchema = z.strictObject({
  image: z.string().min(1),
  /** When the image is missing and cannot be pulled, bootstrap it from these inputs instead. */
  bootstrap: BootstrapBaseSchema.optional(),
});

export const BaseSchema = z.union([ImageBaseSchema, BootstrapBaseSchema]);

export const RepoSchema = z.strictObject({
  name: name,
  uri: z.url(),
  suites: z.array(z.string()).min(1),
  components: z.array(z.string()).default(['main']),
  /** ASCII-armoured signing key, inline. */
  key: z.string().optional(),
  /** Signing key file, relative to the profile. */
  key_file: z.string().optional(),
});

const mode = z.string().regex(/^0?[0-7]{3,4}$/, 'an octal mode such as "0644"');
const owner = z.string().regex(/^[a-z0-9_][a-z0-9_.-]*:[a-z0-9_][a-z0-9_.-]*$/i, 'user:group, such as root:root');

export const FileSchema = z
  .strictObject({
    path: z.string().startsWith('/', 'must be an absolute path inside the image'),
    content: z.string().optional(),
    /** A local file or directory, relative to the profile. */
    source: z.string().optional(),
    mode: mode.optional(),
    owner: owner.optional(),
  })
  .refine((f) => (f.content === undefined) !== (f.source === undefined), {
    message: 'set exactly one of content or source',
  });

export const UserSchema = z.strictObject({
  name: z.string().regex(/^[a-z_][a-z0-9_-]*$/, 'a POSIX user name'),
  password_hash: z.string().optional(),
  ssh_authorized_keys: z.array(z.string()).default([]),
  sudo: z.boolean().default(false),
  shell: z.string().default('/bin/bash'),
  groups: z.array(z.string()).default([]),
  uid: z.number().int().positive().optional(),
});

/** An output: an exporter name, or an exporter name with its options. */
export const OutputSchema = z.union([z.string().min(1), z.looseObject({ format: z.string().min(1) })]);

/**
 * A package as apt and apk take it: a name that starts with a letter or digit (so that it cannot be
 * read as an option), then optionally `:arch` and `=version` or `/release`.
 */
const packageName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9+._-]*(:[a-z0-9-]+)?([=/][A-Za-z0-9+.~:_-]+)?$/i,
    'a package name such as "openssh-server", "nginx=1.22.1-9" or "linux-image-amd64/bookworm-backports"',
  );

export const ProfileSchema = z.strictObject({
  name,
  builder: z.string().default('debian'),
  base: BaseSchema,
  /** For the dockerfile builder: a Dockerfile relative to the profile. */
  dockerfile: z.string().optional(),
  repos: z.array(RepoSchema).default([]),
  packages: z.array(packageName).default([]),
  files: z.array(FileSchema).default([]),
  users: z.array(UserSchema).default([]),
  hostname: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/, 'a host name (letters, digits, "-")')
    .optional(),
  timezone: z.string().optional(),
  locale: z.string().optional(),
  services: z
    .strictObject({ enable: z.array(z.string()).default([]), disable: z.array(z.string()).default([]) })
    .optional(),
  run: z.array(z.string()).default([]),
  outputs: z.array(OutputSchema).default(['tar.zst']),
  bootable: z.boolean().default(false),
  /**
   * A bootable apt image gets the distribution's signed boot chain (shim-signed and the signed GRUB)
   * and boots through it on UEFI, with Secure Boot on or off; false keeps GRUB unsigned.
   */
  secure_boot: z.boolean().default(true),
  /**
   * The build's fixed time: every timestamp in the artifacts is clamped to it (seconds since 1970,
   * or an ISO date). `SOURCE_DATE_EPOCH` in the environment wins over it.
   */
  epoch: z
    .union([
      z.number().int().nonnegative(),
      z.iso.datetime({ offset: true }).transform((d) => Math.floor(Date.parse(d) / 1000)),
    ])
    .optional(),
  /** First-boot hygiene: what is removed from every artifact; set an item to keep to opt out. */
  hygiene: HygieneSchema.default(HygieneSchema.parse({})),
  /** A cloud-init config drive for build-to-disk runs (`--target`). */
  configdrive: ConfigDriveSchema.optional(),
  /** Inline layout, or a layout file relative to the profile. */
  layout: z.union([z.string(), LayoutSchema]).optional(),
  /** Extra plugin package directories, relative to the profile. */
  plugins: z.array(z.string()).default([]),
  /** Actions that join this build's pipelines (build, and deploy with --target), each where its plugin places it. */
  with: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'an action name such as bootloader')).default([]),
});

export type Profile = z.infer<typeof ProfileSchema>;
export type BootstrapBase = z.infer<typeof BootstrapBaseSchema>;
export type ImageBase = z.infer<typeof ImageBaseSchema>;
export type ProfileFile = z.infer<typeof FileSchema>;
export type ProfileUser = z.infer<typeof UserSchema>;
export type Repo = z.infer<typeof RepoSchema>;
export type Output = z.infer<typeof OutputSchema>;
