import type { z } from 'zod';
import type { ConfigDriveSchema } from './configdrive-schema.js';

/** A config drive partition is this big, and its content must fit in it. */
export const CONFIG_DRIVE_BYTES = 64 * 1024 * 1024;

export const CONFIG_DRIVE_FLAVORS = ['nocloud', 'config-2'] as const;
export const CONFIG_DRIVE_FS = ['vfat', 'iso9660'] as const;

/** The filesystem label cloud-init looks for, per flavor. */
export const CONFIG_DRIVE_LABEL: Record<ConfigDriveFlavor, string> = { nocloud: 'cidata', 'config-2': 'config-2' };

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
