import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { devNumber, loopDevices, majorMinor, sysBlockDir, sysPartitions } from './sysfs.js';

/** Mount points by device, as /proc/self/mountinfo lists them ("8:1" → ["/boot"]). */
async function mountsByDevNumber(): Promise<Map<string, string[]>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const map = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mountPoint = f[4].replace(/\\040/g, ' ');
    map.set(f[2], [...(map.get(f[2]) ?? []), mountPoint]);
  }
  return map;
}

async function swapDevices(): Promise<string[]> {
  const text = await readFile('/proc/swaps', 'utf8').catch(() => '');
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/)[0])
    .filter(Boolean);
}

type Loop = Awaited<ReturnType<typeof loopDevices>>[number];

/** "dev:ino" of a file, its identity whatever path names it; undefined when it does not exist. */
export const fileId = (file: string) =>
  stat(file).then(
    (s) => `${s.dev}:${s.ino}`,
    () => undefined,
  );

/** Whether two byte ranges overlap; a size of 0 runs to the end. */
const overlaps = (a: { offset: number; size: number }, b: { offset: number; size: number }) =>
  (b.size === 0 || a.offset < b.offset + b.size) && (a.size === 0 || b.offset < a.offset + a.size);

/**
 * Loop devices that reach the bytes of `target`: over it or its partition nodes, over a loop device
 * already found (loops over loops), and, when `target` is itself a loop device, its siblings over
 * the same backing file whose range overlaps its own (the same file, whatever path names it).
 */
async function loopsOver(target: string, partitionNodes: string[]): Promise<Loop[]> {
  const loops = await loopDevices();
  const self = loops.find((l) => l.dev === target);
  // a loop device's siblings share its backing file; a file's loop devices may name it by another path
  const selfId = self ? await fileId(self.backing) : await fileId(target);
  const ids = new Map(await Promise.all(loops.map(async (l) => [l.dev, await fileId(l.backing)] as const)));
  const backed = new Set([target, ...partitionNodes]);
  const found: Loop[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const loop of loops) {
      if (loop === self || found.includes(loop)) continue;
      const sibling = selfId !== undefined && ids.get(loop.dev) === selfId && (!self || overlaps(loop, self));
      if (!backed.has(loop.backing) && !sibling) continue;
      found.push(loop);
      backed.add(loop.dev);
      grew = true;
    }
  }
  return found;
}

/**
 * Everything that holds a target or one of its partitions: mounts (directly, through a partition
 * node or through a loop device over it), swap, the running root, and holders such as md, dm or
 * LVM. Each entry is a sentence naming the holder; empty when the target is free.
 */
export async function findHolders(target: string, kind: 'block' | 'file'): Promise<string[]> {
  const found: string[] = [];
  const mounts = await mountsByDevNumber();
  const swaps = await swapDevices();
  const rootDev = majorMinor((await stat('/')).dev);
  const real = await realpath(target).catch(() => path.resolve(target));
  // the target's own nodes: the disk and its partitions (block devices), then loop devices over any of them
  const nodes: { dev: string; number: string; what: string }[] = [];
  if (kind === 'block') {
    const sys = await sysBlockDir(real);
    nodes.push({ dev: real, number: await devNumber(real), what: real });
    for (const p of await sysPartitions(sys)) {
      const number = await readFile(path.join(sys, p.name, 'dev'), 'utf8').then(
        (s) => s.trim(),
        () => '',
      );
      nodes.push({ dev: `/dev/${p.name}`, number, what: `partition /dev/${p.name}` });
    }
    for (const h of await readdir(path.join(sys, 'holders')).catch(() => [] as string[]))
      found.push(`${real} is held by /dev/${h} (device mapper, md or LVM)`);
    for (const p of await sysPartitions(sys)) {
      for (const h of await readdir(path.join(sys, p.name, 'holders')).catch(() => [] as string[]))
        found.push(`/dev/${p.name} is held by /dev/${h} (device mapper, md or LVM)`);
    }
  }
  for (const loop of await loopsOver(
    real,
    nodes.map((n) => n.dev),
  )) {
    const number = await devNumber(loop.dev).catch(() => '');
    const where = loop.offset ? ` at offset ${loop.offset}` : '';
    const mounted = mounts.get(number);
    if (mounted)
      found.push(`${loop.dev} (a loop device over ${loop.backing}${where}) is mounted on ${mounted.join(', ')}`);
    else found.push(`${loop.dev} is a loop device over ${loop.backing}${where}`);
  }
  for (const node of nodes) {
    const mounted = mounts.get(node.number);
    if (mounted) found.push(`${node.what} is mounted on ${mounted.join(', ')}`);
    if (node.number === rootDev) found.push(`${node.what} holds the running root filesystem`);
    if (swaps.includes(node.dev)) found.push(`${node.what} is in use as swap`);
  }
  if (kind === 'file' && swaps.includes(real)) found.push(`${real} is in use as a swap file`);
  return found;
}
