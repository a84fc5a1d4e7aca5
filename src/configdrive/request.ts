import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../core/errors.js';
import {
  CONFIG_DRIVE_FLAVORS,
  CONFIG_DRIVE_FS,
  type ConfigDrive,
  type ConfigDriveFlavor,
  type ConfigDriveFs,
  type ConfigDriveFlags,
  type ConfigDriveRequest,
} from '../objects/configdrive.js';

export type { ConfigDriveFlags } from '../objects/configdrive.js';

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new ValidationError(`${flag}: "${value}" is not one of ${allowed.join(', ')}`);
  return value as T;
}

/**
 * The config drive a run writes: from the flags when any is given (they win), else from a
 * `configdrive:` section (paths relative to its file), else none.
 */
export async function configDriveRequest(
  flags: ConfigDriveFlags,
  section?: { drive: ConfigDrive; file: string },
): Promise<ConfigDriveRequest | undefined> {
  const flavor = oneOf<ConfigDriveFlavor>(flags.configDriveFlavor, CONFIG_DRIVE_FLAVORS, '--config-drive-flavor');
  const fs = oneOf<ConfigDriveFs>(flags.configDriveFs, CONFIG_DRIVE_FS, '--config-drive-fs');
  const files: Partial<ConfigDriveRequest['files']> = {};
  if (flags.configDrive) {
    const dir = path.resolve(flags.configDrive);
    const names = await readdir(dir).catch(() => {
      throw new ValidationError(`--config-drive ${flags.configDrive}: no such directory`, {
        hint: 'a directory with meta-data, and optionally user-data and network-config',
      });
    });
    for (const [key, name] of [
      ['user_data', 'user-data'],
      ['meta_data', 'meta-data'],
      ['network_config', 'network-config'],
    ] as const) {
      if (names.includes(name)) files[key] = path.join(dir, name);
    }
    if (!files.meta_data)
      throw new ValidationError(`--config-drive ${flags.configDrive}: no meta-data file in it`, {
        hint: 'cloud-init needs meta-data with an instance-id',
      });
  }
  if (flags.userData) files.user_data = path.resolve(flags.userData);
  if (flags.metaData) files.meta_data = path.resolve(flags.metaData);
  if (flags.networkConfig) files.network_config = path.resolve(flags.networkConfig);
  if (Object.keys(files).length) {
    if (!files.meta_data)
      throw new ValidationError('--user-data/--network-config need --meta-data too', {
        hint: 'cloud-init needs meta-data with an instance-id',
      });
    return {
      flavor: flavor ?? section?.drive.flavor ?? 'nocloud',
      fs: fs ?? section?.drive.fs ?? 'vfat',
      files: files as ConfigDriveRequest['files'],
      origin: 'flags',
    };
  }
  if (!section) return undefined;
  const rel = (p?: string) => (p === undefined ? undefined : path.resolve(path.dirname(section.file), p));
  return {
    flavor: flavor ?? section.drive.flavor,
    fs: fs ?? section.drive.fs,
    files: {
      user_data: rel(section.drive.user_data),
      meta_data: rel(section.drive.meta_data)!,
      network_config: rel(section.drive.network_config),
    },
    origin: `${section.file}: configdrive`,
  };
}
