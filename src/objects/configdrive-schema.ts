import { z } from 'zod';
import { CONFIG_DRIVE_FLAVORS, CONFIG_DRIVE_FS } from './configdrive.js';

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
