import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** Reads a sysfs attribute, trimmed; undefined when absent. */
export async function sysAttr(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').then(
    (s) => s.trim(),
    () => undefined,
  );
}

/** "8:0" for a dev_t as stat reports it (st_rdev of a node, st_dev of a file). */
export function majorMinor(dev: number): string {
  return `${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00)}`;
}

/** "8:0" of a block device node. */
export async function devNumber(node: string): Promise<string> {
  return majorMinor((await stat(node)).rdev);
}

/** The /sys/block/<name> directory of a whole-disk node such as /dev/sda or /dev/loop3. */
export async function sysBlockDir(node: string): Promise<string> {
  return realpath(`/sys/dev/block/${await devNumber(node)}`);
}

/** Partition directories of a disk in sysfs: [{name: "sda1", number: 1}]. */
export async function sysPartitions(sysDir: string): Promise<{ name: string; number: number }[]> {
  const names = await readdir(sysDir).catch(() => [] as string[]);
  const parts: { name: string; number: number }[] = [];
  for (const name of names) {
    const n = await sysAttr(path.join(sysDir, name, 'partition'));
    if (n) parts.push({ name, number: Number(n) });
  }
  return parts;
}

/** Every loop device with its backing file and offset. */
export async function loopDevices(): Promise<{ dev: string; backing: string; offset: number; size: number }[]> {
  const names = (await readdir('/sys/block').catch(() => [] as string[])).filter((n) => n.startsWith('loop'));
  const loops = [];
  for (const name of names) {
    const backing = await sysAttr(`/sys/block/${name}/loop/backing_file`);
    if (!backing) continue;
    loops.push({
      dev: `/dev/${name}`,
      backing: backing.replace(/ \(deleted\)$/, ''),
      offset: Number((await sysAttr(`/sys/block/${name}/loop/offset`)) ?? 0),
      size: Number((await sysAttr(`/sys/block/${name}/loop/sizelimit`)) ?? 0),
    });
  }
  return loops;
}
