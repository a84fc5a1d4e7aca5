import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { MatchableDisk } from '../objects/disk-match.js';
import { sysAttr } from './sysfs.js';

/** A whole disk as the kernel describes it: what disk hints (`match:`, `--target-hint`) are matched against. */
export interface DiskInfo extends MatchableDisk {
  removable: boolean;
  read_only: boolean;
}

/** Block devices that are not disks a layout can be deployed onto. */
const VIRTUAL = /^(loop|ram|zram|dm-|md|sr|fd|nbd)\d*/;

/** The unit serial number from a SCSI VPD page 0x80 (4-byte header, then the serial). */
export function vpdSerial(page: Buffer | undefined): string | undefined {
  if (!page || page.length < 4 || page[1] !== 0x80) return undefined;
  const len = page.readUInt16BE(2);
  return (
    page
      .subarray(4, 4 + len)
      .toString('latin1')
      .replace(/\0/g, '')
      .trim() || undefined
  );
}

/**
 * udev's by-path name for a disk, derived from its sysfs device path when there is no udev (as in
 * many ramdisks): pci-ADDR for virtio, pci-ADDR-nvme-N for NVMe namespaces, pci-ADDR-ata-N or
 * pci-ADDR-scsi-H:C:T:L for SCSI and SATA.
 */
export function byPathFromSysfs(devicePath: string, name: string): string | undefined {
  const pci = [...devicePath.matchAll(/\/(\d{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?=\/)/g)].pop()?.[1];
  if (!pci) return undefined;
  const nvme = /^nvme\d+n(\d+)$/.exec(name);
  if (nvme) return `pci-${pci}-nvme-${nvme[1]}`;
  const ata = /\/ata(\d+)\//.exec(devicePath);
  if (ata) return `pci-${pci}-ata-${ata[1]}`;
  const hctl = /\/(\d+:\d+:\d+:\d+)\/block\//.exec(`${devicePath}/block/`) ?? /\/(\d+:\d+:\d+:\d+)$/.exec(devicePath);
  if (hctl) return `pci-${pci}-scsi-${hctl[1]}`;
  return `pci-${pci}`;
}

async function byPathLinks(devRoot: string): Promise<Map<string, string>> {
  const dir = path.join(devRoot, 'disk/by-path');
  const map = new Map<string, string>();
  for (const link of await readdir(dir).catch(() => [] as string[])) {
    if (/-part\d+$/.test(link)) continue;
    const target = await readlink(path.join(dir, link)).catch(() => undefined);
    if (target) map.set(path.basename(target), link);
  }
  return map;
}

/**
 * The whole disks of this machine, from sysfs: loop, RAM, device-mapper, md and optical devices are
 * left out unless `all`. `sysRoot` and `devRoot` are for tests.
 */
export async function listDisks(opts: { all?: boolean; sysRoot?: string; devRoot?: string } = {}): Promise<DiskInfo[]> {
  const sys = opts.sysRoot ?? '/sys';
  const dev = opts.devRoot ?? '/dev';
  const links = await byPathLinks(dev);
  const disks: DiskInfo[] = [];
  for (const name of (await readdir(path.join(sys, 'block')).catch(() => [] as string[])).sort()) {
    if (!opts.all && VIRTUAL.test(name)) continue;
    const dir = path.join(sys, 'block', name);
    const attr = (p: string) => sysAttr(path.join(dir, p));
    const size = Number(await attr('size')) * 512;
    if (!size && !opts.all) continue;
    const devicePath = await realpath(path.join(dir, 'device')).catch(() => '');
    const serial =
      (await attr('serial')) ||
      (await attr('device/serial')) ||
      vpdSerial(await readFile(path.join(dir, 'device/vpd_pg80')).catch(() => undefined));
    const wwn = (await attr('wwid')) || (await attr('device/wwid'));
    disks.push({
      name,
      path: path.join(dev, name),
      size,
      rotational: (await attr('queue/rotational')) === '1',
      ...(serial ? { serial } : {}),
      ...(wwn ? { wwn } : {}),
      ...((await attr('device/model')) ? { model: await attr('device/model') } : {}),
      ...((await attr('device/vendor')) ? { vendor: await attr('device/vendor') } : {}),
      ...((links.get(name) ?? byPathFromSysfs(devicePath, name))
        ? { by_path: links.get(name) ?? byPathFromSysfs(devicePath, name) }
        : {}),
      removable: (await attr('removable')) === '1',
      read_only: (await attr('ro')) === '1',
    });
  }
  return disks;
}
