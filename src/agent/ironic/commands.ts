import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { BareonError } from '../../core/errors.js';
import { lazyPackage } from '../../core/lazy-package.js';
import { parseChecksum } from '../../objects/checksum.js';
import type { ConfigDriveFlags } from '../../objects/configdrive.js';
import type { DeployInput } from '../../objects/deploy.js';
import { SOURCE_FORMATS } from '../../source/resolve.js';
import { jobDeployInput } from '../job-request.js';
import { parseJob } from '../parse-job.js';
import { CommandFailure, type CommandTable } from './agent-api.js';
import type { IronicNode } from './ironic-client.js';
import { readIso } from './iso9660.js';

const tar = lazyPackage<typeof import('tar-stream')>('tar-stream');

/** The name bareon's steps are listed under, where ironic-python-agent names its hardware managers. */
export const HARDWARE_MANAGER = 'BareonHardwareManager';

/** What the commands do to the machine, injected so that tests touch no disk and no power. */
export interface IronicCommandDeps {
  /** bareon's version: the hardware manager version Ironic records. */
  version: string;
  /** Runs a deploy (bareon-deploy's pipeline); throws a BareonError in bareon's words. */
  deploy: (input: DeployInput, ctx: { step: string; node: IronicNode }) => Promise<void>;
  /** Powers off or reboots the machine (called after the command's answer went out). */
  power: (action: 'poweroff' | 'reboot') => Promise<void>;
  /** Flushes the disks' caches (the `sync` command by default). */
  sync?: () => Promise<void>;
  /** Wipes partition tables and filesystem signatures of every disk (clean step erase_devices_metadata). */
  eraseDevicesMetadata?: (node: IronicNode) => Promise<void>;
  /** The partition UUIDs of the disk written last, under the keys Ironic reads ("root uuid"…). */
  partitionUuids?: () => Promise<Record<string, unknown>>;
  /** Files for log.collect_system_logs: the journal, bareon's events… */
  logs?: () => Promise<{ name: string; data: Buffer }[]>;
  /** Fetches a URL's bytes (checksum files, config drives given as URLs). */
  fetchBytes: (url: string) => Promise<Buffer>;
  /** A directory of the agent's own for the files a deploy is given (config drive). */
  workDir: string;
  /** The node as lookup gave it: its root device hints, when a step comes without the node. */
  node?: IronicNode;
}

const nothing = 'nothing to do';

/** A params field as an object, or a CommandFailure naming it. */
function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new CommandFailure(
      'InvalidCommandParamsError',
      400,
      'Invalid command parameters',
      `${what}: expected an object`,
    );
  return v as Record<string, unknown>;
}

/** A step as Ironic sends it: {interface, step, args, priority…}. */
function stepOf(params: Record<string, unknown>): { interface: string; step: string; args: Record<string, unknown> } {
  const step = obj(params.step, 'step');
  if (typeof step.interface !== 'string' || typeof step.step !== 'string')
    throw new CommandFailure(
      'InvalidCommandParamsError',
      400,
      'Invalid command parameters',
      'step: expected {"interface": …, "step": …, "args": {…}}',
    );
  return { ...step, interface: step.interface, step: step.step, args: step.args ? obj(step.args, 'step.args') : {} };
}

// ---------------------------------------------------------------- root device hints

const HINT_OPS = /^(s==|s!=|s>=|s<=|s>|s<|<in>|<or>|<all-in>|==|!=|>=|<=|>|<)\s*/;

/**
 * Ironic's root device hints (the node's properties.root_device, or instance_info.root_device)
 * as bareon's --target-hint strings. Ironic's size is whole GiB with an optional operator; strings
 * may carry "s==". bareon matches strings exactly and sizes by comparison: other operators (<in>,
 * <or>, s!=…) and the hints bareon does not read (hctl, wwn_with_extension, wwn_vendor_extension)
 * are errors, never silently ignored, since the hint chooses the disk that is overwritten.
 */
export function rootDeviceTargetHints(hints: unknown): string[] {
  if (hints === undefined || hints === null) return [];
  const h = obj(hints, 'root device hints');
  const out: string[] = [];
  const fail = (text: string) => new BareonError(`root device hint ${text}`);
  for (const [key, value] of Object.entries(h)) {
    switch (key) {
      case 'serial':
      case 'wwn':
      case 'model':
      case 'vendor':
      case 'name':
      case 'by_path': {
        if (typeof value !== 'string' || !value.trim()) throw fail(`${key}: expected a string`);
        const m = HINT_OPS.exec(value.trim());
        if (m && m[1] !== 's==' && m[1] !== '==')
          throw fail(
            `${key}=${JSON.stringify(value)}: bareon matches ${key} exactly; operator ${m[1]} is not supported`,
          );
        out.push(`${key}=${value.trim().slice(m ? m[0].length : 0)}`);
        break;
      }
      case 'size': {
        const text = String(value).trim();
        const m = /^(==|!=|>=|<=|>|<)?\s*(\d+)$/.exec(text);
        if (!m)
          throw fail(
            `size=${JSON.stringify(value)}: expected whole GiB with an optional operator (==, !=, >=, <=, >, <), such as ">= 60"`,
          );
        const op = m[1] && m[1] !== '==' ? `${m[1]} ` : '';
        out.push(`size=${op}${m[2]}GiB`);
        break;
      }
      case 'rotational': {
        const v = typeof value === 'string' ? value.trim().toLowerCase() : value;
        if (v === true || v === 'true' || v === '1' || v === 'yes' || v === 'on' || v === 1)
          out.push('rotational=true');
        else if (v === false || v === 'false' || v === '0' || v === 'no' || v === 'off' || v === 0)
          out.push('rotational=false');
        else throw fail(`rotational=${JSON.stringify(value)}: expected true or false`);
        break;
      }
      default:
        throw fail(
          `${key}: bareon chooses disks by serial, wwn, model, vendor, size, rotational, name and by_path, not ${key}`,
        );
    }
  }
  return out;
}

/** The hints that choose the disk, as Ironic does: instance_info.root_device first, then properties.root_device. */
export function nodeTargetHints(node: IronicNode | undefined): string[] {
  return rootDeviceTargetHints(node?.instance_info?.root_device ?? node?.properties?.root_device);
}

// ---------------------------------------------------------------- checksums

/**
 * sha256:HEX or sha512:HEX for bareon from an image_info's os_hash_algo/os_hash_value (sha512 is
 * Glance's default) or its legacy checksum (or checksum URL).
 */
export async function imageChecksum(
  info: Record<string, unknown>,
  url: string,
  fetchBytes: (url: string) => Promise<Buffer>,
): Promise<string> {
  const algo = typeof info.os_hash_algo === 'string' ? info.os_hash_algo.toLowerCase() : undefined;
  const value = typeof info.os_hash_value === 'string' ? info.os_hash_value.trim().toLowerCase() : undefined;
  const unsupported = (what: string) =>
    new BareonError(`image_info: bareon checks sources by sha256 or sha512, not ${what}`, {
      hint: "give the image's sha256 or sha512: instance_info image_os_hash_algo and image_os_hash_value",
    });
  const digest = (algorithm: 'sha256' | 'sha512', hex: string, from: string) => {
    const parsed = parseChecksum(`${algorithm}:${hex}`);
    if (!parsed)
      throw new BareonError(`image_info: ${from} is not ${algorithm === 'sha256' ? 64 : 128} hex digits: ${hex}`);
    return `${parsed.algorithm}:${parsed.hex}`;
  };
  if (algo && value) {
    if (algo !== 'sha256' && algo !== 'sha512') throw unsupported(algo);
    return digest(algo, value, 'os_hash_value');
  }
  let legacy = typeof info.checksum === 'string' ? info.checksum.trim() : undefined;
  if (!legacy)
    throw new BareonError('image_info: no checksum; bareon writes no image it cannot check', {
      hint: 'set instance_info image_os_hash_algo=sha256 and image_os_hash_value, or image_checksum',
    });
  if (/^https?:\/\//.test(legacy)) legacy = checksumFromFile((await fetchBytes(legacy)).toString('utf8'), legacy, url);
  const bare = legacy.replace(/^sha(256|512):/i, '').toLowerCase();
  if (/^[0-9a-f]{64}$/.test(bare)) return digest('sha256', bare, 'checksum');
  if (/^[0-9a-f]{128}$/.test(bare)) return digest('sha512', bare, 'checksum');
  if (/^[0-9a-f]{32}$/.test(bare)) throw unsupported('md5');
  throw new BareonError(`image_info: checksum ${JSON.stringify(legacy)} is not a hex digest`);
}

/**
 * The image's digest from a checksum file: one bare digest, or lines "HEX  NAME" (coreutils) or
 * "SHA256 (NAME) = HEX" (BSD) where NAME is the image URL's file name.
 */
export function checksumFromFile(text: string, fileUrl: string, imageUrl: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines.length === 1 && /^[0-9a-f]+$/i.test(lines[0])) return lines[0];
  const name = path.posix.basename(new URL(imageUrl).pathname);
  for (const line of lines) {
    const gnu = /^([0-9a-f]+)\s+\*?(.+)$/i.exec(line);
    if (gnu && path.posix.basename(gnu[2].trim()) === name) return gnu[1];
    const bsd = /^\w+\s*\((.+)\)\s*=\s*([0-9a-f]+)$/i.exec(line);
    if (bsd && path.posix.basename(bsd[1].trim()) === name) return bsd[2];
  }
  throw new BareonError(`checksum file ${fileUrl} lists no digest for ${name}`);
}

// ---------------------------------------------------------------- config drive

/** Bytes of a config drive as Ironic sends it: gzip in base64 (else the bytes as they are). */
export function decodeConfigDrive(data: Buffer): Buffer {
  const text = data.toString('latin1').trim();
  if (/^[A-Za-z0-9+/=\s]+$/.test(text)) {
    const decoded = Buffer.from(text, 'base64');
    if (decoded[0] === 0x1f && decoded[1] === 0x8b) return gunzipSync(decoded, { maxOutputLength: 64 * 2 ** 20 });
    return decoded;
  }
  if (data[0] === 0x1f && data[1] === 0x8b) return gunzipSync(data, { maxOutputLength: 64 * 2 ** 20 });
  return data;
}

const CONFIG_2 = {
  meta: 'openstack/latest/meta_data.json',
  user: 'openstack/latest/user_data',
  network: 'openstack/latest/network_data.json',
};

/**
 * bareon's config drive flags for Ironic's config drive: a gzip+base64 ISO (or its URL), whose
 * openstack/latest files bareon writes again as a config-2 drive (iso9660, label config-2); or the
 * JSON form ({meta_data, user_data, network_data}) as an operator gives it to Ironic. Files are
 * written under `dir`.
 */
export async function configDriveFlags(
  configdrive: unknown,
  dir: string,
  fetchBytes: (url: string) => Promise<Buffer>,
): Promise<ConfigDriveFlags> {
  if (configdrive === undefined || configdrive === null || configdrive === '') return {};
  let meta: Buffer | undefined;
  let user: Buffer | undefined;
  let network: Buffer | undefined;
  if (typeof configdrive === 'string') {
    const raw = /^https?:\/\//.test(configdrive) ? await fetchBytes(configdrive) : Buffer.from(configdrive, 'latin1');
    const files = readIso(decodeConfigDrive(raw));
    const get = (p: string) => files.find((f) => f.path === p)?.data;
    meta = get(CONFIG_2.meta);
    user = get(CONFIG_2.user);
    network = get(CONFIG_2.network);
    if (!meta)
      throw new BareonError(`config drive: no ${CONFIG_2.meta} in it`, {
        hint: `it holds ${files.map((f) => f.path).join(', ') || 'no files'}`,
      });
  } else {
    const cd = obj(configdrive, 'configdrive');
    const json = (v: unknown) => Buffer.from(`${JSON.stringify(v ?? {}, null, 2)}\n`);
    meta = json(cd.meta_data);
    if (cd.user_data !== undefined)
      user = Buffer.from(typeof cd.user_data === 'string' ? cd.user_data : JSON.stringify(cd.user_data));
    if (cd.network_data !== undefined) network = json(cd.network_data);
  }
  // meta_data.json is JSON, which bareon's meta-data reader (YAML) takes as it is; it needs a uuid
  const parsed = (() => {
    try {
      return JSON.parse(meta.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new BareonError(`config drive: ${CONFIG_2.meta} is not JSON`);
    }
  })();
  if (!parsed.uuid && !parsed['instance-id'])
    throw new BareonError(`config drive: ${CONFIG_2.meta} has no uuid`, {
      hint: 'Ironic writes the instance UUID there; cloud-init needs it to tell instances apart',
    });
  await mkdir(dir, { recursive: true });
  const flags: ConfigDriveFlags = { configDriveFlavor: 'config-2', configDriveFs: 'iso9660' };
  flags.metaData = path.join(dir, 'meta-data');
  await writeFile(flags.metaData, meta);
  if (user) {
    flags.userData = path.join(dir, 'user-data');
    await writeFile(flags.userData, user);
  }
  if (network) {
    flags.networkConfig = path.join(dir, 'network-config');
    await writeFile(flags.networkConfig, network);
  }
  return flags;
}

// ---------------------------------------------------------------- write_image

/** disk_format values bareon writes whole (Ironic's "raw" lets bareon tell raw from raw.zst by magic). */
function formatOf(diskFormat: unknown): string | undefined {
  if (diskFormat === undefined || diskFormat === null || diskFormat === '' || diskFormat === 'raw') return undefined;
  const f = String(diskFormat);
  if (f === 'qcow2' || ((SOURCE_FORMATS as readonly string[]).includes(f) && f.startsWith('raw'))) return f;
  throw new BareonError(
    `image_info: disk_format ${f}: bareon's write_image writes raw, raw.gz/xz/zst and qcow2 images`,
    {
      hint: "for a root filesystem tarball use bareon's deploy step deploy.bareon_deploy with a layout",
    },
  );
}

/**
 * The deploy request for Ironic's write_image step: the image at image_info.urls[0] (whole-disk:
 * raw, raw.zst or qcow2) onto the disk the node's root device hints choose, checked by sha256, with
 * Ironic's config drive. Partition images (image_info with root_mb…) are refused: a layout does that
 * in bareon, through deploy.bareon_deploy.
 */
export async function imageInfoDeployInput(
  args: Record<string, unknown>,
  node: IronicNode | undefined,
  deps: Pick<IronicCommandDeps, 'fetchBytes' | 'workDir'>,
): Promise<DeployInput> {
  const info = obj(args.image_info, 'image_info');
  const urls = Array.isArray(info.urls) ? info.urls.filter((u): u is string => typeof u === 'string') : [];
  if (!urls.length) throw new BareonError('image_info: no urls; Ironic sends the image URL in image_info.urls');
  const url = urls[0];
  if (!/^https?:\/\//.test(url))
    throw new BareonError(`image_info: ${url}: bareon's agent downloads images over http(s)`, {
      hint: 'serve the image over HTTP, or let Ironic serve it (image_download_source=local)',
    });
  if (info.image_type === 'partition' || info.root_mb !== undefined || info.root_gb !== undefined)
    throw new BareonError("image_info: a partition image; bareon's write_image writes whole-disk images", {
      hint: "deploy a root filesystem with bareon's step deploy.bareon_deploy and a layout instead",
    });
  const targetHints = nodeTargetHints(node);
  if (!targetHints.length)
    throw new BareonError(
      'write_image: the node has no root device hints, so bareon does not know which disk to overwrite',
      {
        hint: 'set the node\'s properties.root_device, such as {"serial": "S3Z1NB0K123456"}',
      },
    );
  const checksum = await imageChecksum(info, url, deps.fetchBytes);
  const configdrive = args.configdrive ?? info.configdrive;
  const configDrive = await configDriveFlags(configdrive, path.join(deps.workDir, 'configdrive'), deps.fetchBytes);
  return {
    source: url,
    format: formatOf(info.disk_format),
    checksum,
    settings: { verify: true, grow: false, preserveOnError: false },
    yes: true,
    dryRun: false,
    targetHints,
    keepLabels: [],
    with: [],
    configDrive,
  };
}

// ---------------------------------------------------------------- bareon_deploy

/** The job fields deploy.bareon_deploy takes as its args (a bareon job without when_done: Ironic runs the power). */
const BAREON_DEPLOY_ARGS: Record<string, string> = {
  source: 'A disk image, rootfs tarball, filesystem image or bareon manifest: an http(s) URL or a path on the agent',
  checksum: 'sha256:HEX or sha512:HEX of the source as stored (or verify: false, or trust:)',
  verify: 'false writes the source unchecked',
  trust: 'An allowed-signers file on the agent: the source is a manifest signed by one of its keys',
  layout: "bareon's layout (disks, partitions, md RAID, LVM, filesystems), inline",
  target_hints: "Hints choosing the target of a whole-disk image or one-disk layout (default: the node's root_device)",
  configdrive: "Config drive files {meta_data, user_data, network_config} (default: the node's config drive)",
  keep: 'Partition labels to keep with their data',
  grow: 'Grow the last partition to fill the disk after a whole-disk image',
  with: 'Actions (installed on the agent image) to join the deploy',
};

/** The deploy request for deploy.bareon_deploy: its args are a bareon job; the node fills in hints and config drive. */
export async function bareonStepDeployInput(
  args: Record<string, unknown>,
  node: IronicNode | undefined,
  deps: Pick<IronicCommandDeps, 'fetchBytes' | 'workDir'>,
): Promise<DeployInput> {
  if ('when_done' in args)
    throw new BareonError('deploy.bareon_deploy: leave when_done out; Ironic powers the machine after its steps');
  const origin = 'deploy step bareon_deploy';
  const job = parseJob(JSON.stringify(args), origin);
  // the node's root device hints choose the disk unless the job does: by its own hints, or by a
  // layout whose disks name their device or carry match: hints
  const layoutChooses =
    typeof job.layout === 'object' && job.layout.disks.some((d) => d.device !== undefined || d.match !== undefined);
  const hints = job.target_hints || layoutChooses ? [] : nodeTargetHints(node);
  const input = jobDeployInput(job, deps.workDir, origin);
  if (hints.length) input.targetHints = hints;
  if (!job.configdrive)
    input.configDrive = await configDriveFlags(
      node?.instance_info?.configdrive,
      path.join(deps.workDir, 'configdrive'),
      deps.fetchBytes,
    );
  return input;
}

// ---------------------------------------------------------------- steps

/** The deploy steps the agent advertises (priority 0: run when a template or --deploy-steps asks). */
export function deploySteps(): Record<string, unknown>[] {
  return [
    {
      interface: 'deploy',
      step: 'write_image',
      priority: 0,
      reboot_requested: false,
      argsinfo: {
        image_info: { description: "The image to write, as Ironic's direct deploy sends it", required: true },
        configdrive: { description: 'A config drive: gzip+base64 ISO 9660 or its URL', required: false },
      },
    },
    {
      interface: 'deploy',
      step: 'bareon_deploy',
      priority: 0,
      reboot_requested: false,
      argsinfo: Object.fromEntries(
        Object.entries(BAREON_DEPLOY_ARGS).map(([k, description]) => [k, { description, required: k === 'source' }]),
      ),
    },
  ];
}

/** The clean steps the agent advertises (Ironic may override the priority). */
export function cleanSteps(): Record<string, unknown>[] {
  return [
    {
      interface: 'deploy',
      step: 'erase_devices_metadata',
      priority: 99,
      reboot_requested: false,
      abortable: true,
    },
  ];
}

// ---------------------------------------------------------------- logs

/** A tar of `files`, gzipped and in base64: what Ironic stores as the ramdisk's logs (a .tar.gz). */
export async function logsArchive(files: { name: string; data: Buffer }[]): Promise<string> {
  const pack = tar().pack();
  const chunks: Buffer[] = [];
  const out = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const mtime = new Date();
  for (const f of files) pack.entry({ name: f.name, size: f.data.length, mtime, mode: 0o644 }, f.data);
  pack.finalize();
  await out;
  return gzipSync(Buffer.concat(chunks)).toString('base64');
}

const run = promisify(execFile);

/** The default log files: this boot's journal, and bareon's files under /run/bareon when there are any. */
async function defaultLogs(): Promise<{ name: string; data: Buffer }[]> {
  const out: { name: string; data: Buffer }[] = [];
  const journal = await run('journalctl', ['-b', '--no-pager', '-o', 'short-iso'], {
    maxBuffer: 64 * 2 ** 20,
    encoding: 'buffer',
  }).catch((err: Error) => ({ stdout: Buffer.from(`journalctl failed: ${err.message}\n`) }));
  out.push({ name: 'journal', data: journal.stdout as Buffer });
  for (const name of ['events.jsonl', 'agent.log']) {
    const data = await readFile(path.join('/run/bareon', name)).catch(() => undefined);
    if (data) out.push({ name, data });
  }
  return out;
}

// ---------------------------------------------------------------- the table

function bareonFailure(err: unknown): never {
  if (err instanceof CommandFailure) throw err;
  if (err instanceof BareonError) {
    const text = err.hint ? `${err.message} (${err.hint})` : err.message;
    throw new CommandFailure('CommandExecutionError', 500, 'Command execution failed', text);
  }
  throw err;
}

/**
 * The commands bareon's agent runs for Ironic, by "extension.command" name. Anything else is a
 * FAILED command naming these (see AgentApi).
 */
export function ironicCommands(deps: IronicCommandDeps): CommandTable {
  const version = { [HARDWARE_MANAGER]: deps.version };
  const sync = deps.sync ?? (() => run('sync', []).then(() => undefined));
  const stepsResult = (kind: 'deploy' | 'clean') => ({
    [`${kind}_steps`]: { [HARDWARE_MANAGER]: kind === 'deploy' ? deploySteps() : cleanSteps() },
    hardware_manager_version: version,
  });
  const flush = async () => {
    await sync();
    return null;
  };
  const power = (action: 'poweroff' | 'reboot') => () => {
    // the answer is out and the command recorded: a moment for Ironic's next poll, then down
    setTimeout(() => void deps.power(action), 200).unref?.();
  };
  return {
    'deploy.get_deploy_steps': { sync: true, handler: async () => stepsResult('deploy') },
    'deploy.execute_deploy_step': {
      handler: async (params) => {
        const step = stepOf(params);
        const node = (params.node as IronicNode | undefined) ?? deps.node;
        if (step.interface !== 'deploy' || !['write_image', 'bareon_deploy'].includes(step.step))
          throw new CommandFailure(
            'InvalidCommandParamsError',
            400,
            'Invalid command parameters',
            `Unknown deploy step ${step.interface}.${step.step}; bareon's agent runs deploy.write_image and deploy.bareon_deploy`,
          );
        try {
          const input =
            step.step === 'write_image'
              ? await imageInfoDeployInput(step.args, node, deps)
              : await bareonStepDeployInput(step.args, node, deps);
          await deps.deploy(input, { step: step.step, node: node ?? { uuid: '' } });
        } catch (err) {
          bareonFailure(err);
        }
        return { deploy_result: null, deploy_step: params.step };
      },
    },
    'clean.get_clean_steps': { sync: true, handler: async () => stepsResult('clean') },
    'clean.execute_clean_step': {
      handler: async (params) => {
        const step = stepOf(params);
        if (step.interface !== 'deploy' || step.step !== 'erase_devices_metadata')
          throw new CommandFailure(
            'InvalidCommandParamsError',
            400,
            'Invalid command parameters',
            `Unknown clean step ${step.interface}.${step.step}; bareon's agent runs deploy.erase_devices_metadata`,
          );
        if (!deps.eraseDevicesMetadata)
          throw new CommandFailure(
            'CommandExecutionError',
            500,
            'Command execution failed',
            'erase_devices_metadata is not wired in this agent',
          );
        try {
          await deps.eraseDevicesMetadata((params.node as IronicNode | undefined) ?? deps.node ?? { uuid: '' });
        } catch (err) {
          bareonFailure(err);
        }
        return { clean_result: null, clean_step: params.step };
      },
    },
    'image.install_bootloader': {
      // whole-disk images carry their own boot loader; bareon adds none and leaves NVRAM alone
      handler: async () => `${nothing}: the image written carries its own boot loader`,
    },
    'standby.get_partition_uuids': {
      sync: true,
      handler: async () => (deps.partitionUuids ? deps.partitionUuids() : {}),
    },
    'standby.sync': { sync: true, handler: flush },
    'standby.power_off': { handler: flush, afterAnswer: power('poweroff') },
    // Ironic's reboot command is run_image (ironic-python-agent's name); reboot is the same
    'standby.run_image': { handler: flush, afterAnswer: power('reboot') },
    'standby.reboot': { handler: flush, afterAnswer: power('reboot') },
    'log.collect_system_logs': {
      sync: true,
      handler: async () => ({ system_logs: await logsArchive(await (deps.logs ?? defaultLogs)()) }),
    },
  };
}
