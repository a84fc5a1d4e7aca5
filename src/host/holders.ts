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
  return text.split('\n').slice(1).map((l) => l.split(/\s+/)[0]).filter(Boolean);
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
      const number = await readFile(path.join(sys, p.name, 'dev'), 'utf8').then((s) => s.trim(), () => '');
      nodes.push({ dev: `/dev/${p.name}`, number, what: `partition /dev/${p.name}` });
    }
    for (const h of await readdir(path.join(sys, 'holders')).catch(() => [] as string[])) found.push(`${real} is held by /dev/${h} (device mapper, md or LVM)`);
    for (const p of await sysPartitions(sys)) {
      for (const h of await readdir(path.join(sys, p.name, 'holders')).catch(() => [] as string[])) found.push(`/dev/${p.name} is held by /dev/${h} (device mapper, md or LVM)`);
    }
  }
  const backed = new Set([real, ...nodes.map((n) => n.dev)]);
  for (const loop of await loopDevices()) {
    if (!backed.has(loop.backing)) continue;
    const number = await devNumber(loop.dev).catch(() => '');
    const where = loop.offset ? ` at offset ${loop.offset}` : '';
    const mounted = mounts.get(number);
    if (mounted) found.push(`${loop.dev} (a loop device over ${loop.backing}${where}) is mounted on ${mounted.join(', ')}`);
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
