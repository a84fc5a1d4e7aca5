import { z } from 'zod';

/** A config drive partition is this big, and its content must fit in it. */
export const CONFIG_DRIVE_BYTES = 64 * 1024 * 1024;

export const CONFIG_DRIVE_FLAVORS = ['nocloud', 'config-2'] as const;
export const CONFIG_DRIVE_FS = ['vfat', 'iso9660'] as const;

/** The filesystem label cloud-init looks for, per flavor. */
export const CONFIG_DRIVE_LABEL: Record<ConfigDriveFlavor, string> = { nocloud: 'cidata', 'config-2': 'config-2' };

/**
 * The `configdrive:` section of a profile or layout. File paths are relative to the file that holds
 * the section; the flags `--user-data`, `--meta-data`, `--network-config` and `--config-drive DIR`
 * give the same from the command line.
 */
export const ConfigDriveSchema = z.strictObject({
  flavor: z.enum(CONFIG_DRIVE_FLAVORS).default('nocloud'),
  fs: z.enum(CONFIG_DRIVE_FS).default('vfat'),
  user_data: z.string().min(1).optional(),
  meta_data: z.string().min(1),
  network_config: z.string().min(1).optional(),
});

export type ConfigDrive = z.infer<typeof ConfigDriveSchema>;
export type ConfigDriveFlavor = (typeof CONFIG_DRIVE_FLAVORS)[number];
export type ConfigDriveFs = (typeof CONFIG_DRIVE_FS)[number];

/** What the configdrive action writes: resolved paths, and where they came from (for error messages). */
export interface ConfigDriveRequest {
  flavor: ConfigDriveFlavor;
  fs: ConfigDriveFs;
  files: { user_data?: string; meta_data: string; network_config?: string };
  /** "--meta-data", "profiles/x.yaml: configdrive"… */
  origin: string;
}

/** The config drive flags shared by bareon-deploy, bareon-build --target and bareon run configdrive. */
export interface ConfigDriveFlags {
  userData?: string;
  metaData?: string;
  networkConfig?: string;
  configDrive?: string;
  configDriveFlavor?: string;
  configDriveFs?: string;
}
