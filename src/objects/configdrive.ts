import { z } from 'zod';

/** A cloud-init config drive: NoCloud (`cidata`) or OpenStack `config-2`. */
export const ConfigDriveSchema = z.strictObject({
  flavor: z.enum(['nocloud', 'config-2']).default('nocloud'),
  format: z.enum(['vfat', 'iso']).default('vfat'),
  user_data: z.string().optional(),
  meta_data: z.record(z.string(), z.unknown()).default({}),
  network_config: z.record(z.string(), z.unknown()).optional(),
});

export type ConfigDrive = z.infer<typeof ConfigDriveSchema>;
