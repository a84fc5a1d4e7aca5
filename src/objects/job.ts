import { parseChecksum } from './checksum.js';
import { z } from 'zod';
import { DiskMatchSchema } from './disk-match.js';
import { LayoutSchema } from './layout.js';

/** The label of the disk or config drive that carries a job for the deploy agent. */
export const JOB_LABEL = 'bareon-job';

/**
 * What the deploy agent is asked to do: the document a fleet tool writes (Ironic deploy steps, an
 * SSH script, a PXE menu). Paths are relative to the job disk (or the job's URL), or absolute.
 */
export const JobSchema = z
  .strictObject({
    /** A path on the job disk, an absolute path, or an http(s) URL: a disk image, rootfs tarball, filesystem image or manifest. */
    source: z.string().min(1),
    /** sha256:HEX (or sha512:HEX) of the source as stored; or verify: false. */
    checksum: z
      .string()
      .refine((text) => parseChecksum(text) !== undefined, 'sha256: and 64 hex digits, or sha512: and 128')
      .optional(),
    verify: z.boolean().default(true),
    /** An allowed-signers file: the source must be a manifest signed by one of its keys (it then gives the checksum). */
    trust: z.string().min(1).optional(),
    /** A layout file on the job disk, or the layout inline. */
    layout: z.union([z.string().min(1), LayoutSchema]).optional(),
    /** Hints that choose the target disk of a whole-disk image or a one-disk layout. */
    target_hints: DiskMatchSchema.optional(),
    /** Config drive files on the job disk. */
    configdrive: z
      .strictObject({ user_data: z.string().optional(), meta_data: z.string(), network_config: z.string().optional() })
      .optional(),
    /** Partition labels (GPT name or filesystem label) to keep with their data. */
    keep: z.array(z.string().min(1)).default([]),
    /** Make the last partition fill the disk after a whole-disk image. */
    grow: z.boolean().default(false),
    when_done: z.enum(['poweroff', 'reboot', 'none']).default('poweroff'),
    /** Actions that join the deploy, each where its plugin places it (installed on the agent image). */
    with: z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'an action name such as bootloader')).default([]),
  })
  .refine((j) => j.checksum !== undefined || j.trust !== undefined || !j.verify, {
    message: 'give checksum: sha256:HEX, trust: with a signed manifest, or verify: false to write unverified',
    path: ['checksum'],
  });

export type Job = z.infer<typeof JobSchema>;
export type JobInput = z.input<typeof JobSchema>;
