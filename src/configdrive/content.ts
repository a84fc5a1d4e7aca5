import { readFile, stat } from 'node:fs/promises';
import { ValidationError } from '../core/errors.js';
import { CONFIG_DRIVE_BYTES, type ConfigDriveRequest } from '../objects/configdrive.js';
import { formatBytes } from '../core/size.js';
import { lazyPackage } from '../core/lazy-package.js';

/** The YAML parser, for meta-data: loaded when a config drive is written. */
const yaml = lazyPackage<typeof import('yaml')>('yaml');

/** A file of the config drive: its path inside the filesystem and its bytes. */
export interface DriveFile {
  path: string;
  data: Buffer;
}

/** Room the filesystem itself takes out of the partition (FAT tables, ISO descriptors), kept free. */
const FS_OVERHEAD = 2 * 1024 * 1024;

const FLAG: Record<keyof ConfigDriveRequest['files'], string> = {
  user_data: 'user-data',
  meta_data: 'meta-data',
  network_config: 'network-config',
};

function where(req: ConfigDriveRequest, key: keyof ConfigDriveRequest['files']): string {
  return `${req.origin === 'flags' ? `--${FLAG[key]}` : `${req.origin}: ${key}`} ${req.files[key]}`;
}

/** meta-data as a mapping: cloud-init's NoCloud needs `instance-id`. */
function parseMetaData(req: ConfigDriveRequest, text: string): Record<string, unknown> {
  let meta: unknown;
  try {
    meta = yaml().parse(text);
  } catch (err) {
    throw new ValidationError(`${where(req, 'meta_data')}: not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!meta || typeof meta !== 'object' || Array.isArray(meta))
    throw new ValidationError(`${where(req, 'meta_data')}: expected a YAML mapping such as "instance-id: node-1"`);
  const m = meta as Record<string, unknown>;
  if (!m['instance-id'] && !m.uuid)
    throw new ValidationError(`${where(req, 'meta_data')}: no instance-id`, {
      hint: 'cloud-init runs its per-instance modules once per instance-id; add "instance-id: <unique id>"',
    });
  return m;
}

/**
 * Reads and checks the inputs of a config drive, then lays out its files for the flavor:
 * NoCloud puts user-data, meta-data and network-config at the root; config-2 puts
 * openstack/latest/{meta_data.json,user_data,network_data.json}, with meta-data converted to JSON
 * (uuid from instance-id, hostname from local-hostname). Every problem is a ValidationError that
 * names the flag or file, so it surfaces before anything is written.
 */
export async function configDriveFiles(req: ConfigDriveRequest): Promise<DriveFile[]> {
  const read = async (key: keyof ConfigDriveRequest['files']): Promise<Buffer | undefined> => {
    const file = req.files[key];
    if (!file) return undefined;
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new ValidationError(`${where(req, key)}: ${st ? 'not a regular file' : 'no such file'}`);
    if (st.size > CONFIG_DRIVE_BYTES)
      throw new ValidationError(
        `${where(req, key)}: ${formatBytes(st.size)} is more than a config drive holds (${formatBytes(CONFIG_DRIVE_BYTES)})`,
      );
    return readFile(file);
  };
  const userData = await read('user_data');
  const metaText = (await read('meta_data'))!;
  const network = await read('network_config');
  const meta = parseMetaData(req, metaText.toString('utf8'));

  let files: DriveFile[];
  if (req.flavor === 'nocloud') {
    files = [
      { path: 'meta-data', data: metaText },
      { path: 'user-data', data: userData ?? Buffer.from('#cloud-config\n{}\n') },
      ...(network ? [{ path: 'network-config', data: network }] : []),
    ];
  } else {
    const { 'instance-id': instanceId, 'local-hostname': hostname, ...rest } = meta;
    const json = {
      ...rest,
      uuid: rest.uuid ?? instanceId,
      ...(hostname ? { hostname, name: rest.name ?? hostname } : {}),
    };
    if (network) {
      try {
        JSON.parse(network.toString('utf8'));
      } catch {
        throw new ValidationError(
          `${where(req, 'network_config')}: config-2 takes OpenStack's network_data.json (JSON)`,
          { hint: 'a YAML network-config (v1/v2) belongs to the nocloud flavor' },
        );
      }
    }
    files = [
      { path: 'openstack/latest/meta_data.json', data: Buffer.from(`${JSON.stringify(json, null, 2)}\n`) },
      ...(userData ? [{ path: 'openstack/latest/user_data', data: userData }] : []),
      ...(network ? [{ path: 'openstack/latest/network_data.json', data: network }] : []),
    ];
  }
  const total = files.reduce((n, f) => n + f.data.length, 0);
  if (total > CONFIG_DRIVE_BYTES - FS_OVERHEAD) {
    throw new ValidationError(
      `config drive (${req.origin === 'flags' ? 'from the flags' : req.origin}): ${formatBytes(total)} of content does not fit in ${formatBytes(CONFIG_DRIVE_BYTES)}`,
      {
        hint: `keep it under ${formatBytes(CONFIG_DRIVE_BYTES - FS_OVERHEAD)}; fetch large payloads from user-data instead of embedding them`,
      },
    );
  }
  return files;
}
