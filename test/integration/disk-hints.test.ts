import { execa } from 'execa';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bareon } from '../helpers/cli.js';

/** This machine's own disks, as `bareon disks --json` reports them from sysfs. */
let disks: { path: string; serial?: string; size: number; held_by: string[] }[];
let image: string;

beforeAll(async () => {
  const r = await bareon('bareon', ['disks', '--json']);
  expect(r.exitCode, String(r.all)).toBe(0);
  disks = JSON.parse(String(r.stdout));
  image = path.join(await mkdtemp(path.join(tmpdir(), 'bareon-hints-')), 'small.raw');
  await execa('truncate', ['-s', '8M', image]);
  await execa('sgdisk', ['-n', '1:2048:0', image]);
});

describe('choosing the target disk by hints, on this machine', () => {
  it('lists the real disks with their attributes and what holds them', () => {
    expect(disks.length).toBeGreaterThan(0);
    const root = disks.find((d) => d.held_by.some((h) => h.includes('running root')));
    expect(root, JSON.stringify(disks)).toBeDefined();
  });

  it('resolves a serial hint to the disk, then refuses it because it holds the running root', async () => {
    const root = disks.find((d) => d.held_by.some((h) => h.includes('running root')) && d.serial);
    if (!root)
      return expect(
        disks.some((d) => d.serial),
        'no disk here reports a serial',
      ).toBe(false);
    const r = await bareon('deploy', [image, '--target-hint', `serial=${root.serial}`, '--no-verify', '--dry-run']);
    expect(r.exitCode, String(r.all)).toBe(2);
    expect(r.stdout).toContain(`target: ${root.path}, chosen by --target-hint`);
    expect(r.stderr).toContain('running root');
  });

  it('stops before anything is written when no disk matches, or several do, listing the disks seen', async () => {
    const none = await bareon('deploy', [image, '--target-hint', 'serial=no-such-disk', '--no-verify']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('no disk matches serial=no-such-disk; disks seen:');
    expect(none.stderr).toContain(disks[0].path);
    const many = await bareon('deploy', [image, '--target-hint', 'size=>= 1B', '--no-verify']);
    if (disks.length > 1) expect(many.stderr).toMatch(/\d+ disks match size=">= 1B"/);
    else expect(many.stderr).toContain('running root'); // one disk: chosen, then refused
    expect(many.exitCode).toBe(2);
    const both = await bareon('deploy', [image, '/tmp/x.img', '--target-hint', 'serial=a', '--no-verify']);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain('give TARGET or --target-hint, not both');
  });
});
