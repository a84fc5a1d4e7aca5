import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLayout, loadProfile, parseSize } from '../../src/objects/index.js';
import { bareon } from '../helpers/cli.js';

async function yamlFile(name: string, text: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'bareon-objects-')), name);
  await writeFile(file, text);
  return file;
}

describe('profile errors', () => {
  it('points at a mistyped key with file:line:col, the field path and a hint', async () => {
    const file = await yamlFile(
      'web.yaml',
      'name: web\nbase: {image: "debian:bookworm"}\npackages: [curl]\nusers:\n  - name: admin\n    shel: /bin/bash\n',
    );
    const err = await loadProfile(file).catch((e) => e);
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(`${file}:6:5: users[0].shel: unknown key (did you mean "shell"?)`);
    expect(err.hint).toBe('rename "shel" to "shell"');
  });

  it('points at a value of the wrong type', async () => {
    const file = await yamlFile(
      'web.yaml',
      'name: web\nbase: {image: "debian:bookworm"}\npackages:\n  - curl\n  - 42\n',
    );
    const err = await loadProfile(file).catch((e) => e);
    expect(err.message).toBe(`${file}:5:5: packages[1]: expected string, got number`);
  });

  it('names a missing required field', async () => {
    const file = await yamlFile('web.yaml', 'base: {image: "debian:bookworm"}\n');
    const err = await loadProfile(file).catch((e) => e);
    expect(err.message).toMatch(/web\.yaml:1:1: name: expected string, got nothing/);
  });

  it('reports YAML syntax errors with their position', async () => {
    const file = await yamlFile('bad.yaml', 'name: web\npackages: [curl\n');
    const err = await loadProfile(file).catch((e) => e);
    expect(err.message).toMatch(/bad\.yaml:\d+:\d+: invalid YAML/);
  });

  it('is what `bareon validate` prints, with exit code 2', async () => {
    const file = await yamlFile('web.yaml', 'name: web\nbase: {image: "debian:bookworm"}\nhostnme: web1\n');
    const r = await bareon('bareon', ['validate', file]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${file}:3:1: hostnme: unknown key (did you mean "hostname"?)`);
    const good = await yamlFile('ok.yaml', 'name: web\nbase: {distro: debian, suite: bookworm}\n');
    const ok = await bareon('bareon', ['validate', good]);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain('valid profile "web"');
  });
});

describe('layouts', () => {
  it('rejects two remaining partitions on one disk, naming the field', async () => {
    const file = await yamlFile(
      'l.yaml',
      'disks:\n  - id: root\n    partitions:\n      - {type: linux, size: remaining}\n      - {type: linux, size: remaining}\n',
    );
    const err = await loadLayout(file).catch((e) => e);
    expect(err.message).toMatch(
      /l\.yaml:5:\d+: disks\[0\]\.partitions\[1\]\.size: only one partition per disk may use "remaining"/,
    );
  });

  it('parses sizes in binary and decimal units, percentages and remaining', () => {
    expect(parseSize('1MiB')).toEqual({ kind: 'bytes', bytes: 1048576 });
    expect(parseSize('2GB')).toEqual({ kind: 'bytes', bytes: 2e9 });
    expect(parseSize('25%')).toEqual({ kind: 'percent', percent: 25 });
    expect(parseSize('remaining')).toEqual({ kind: 'remaining' });
    expect(parseSize('12 parsecs')).toMatch(/unknown unit/);
  });
});

describe('layout structure', () => {
  it('refuses a bios_grub partition on an msdos disk', async () => {
    const file = await yamlFile(
      'm.yaml',
      'disks:\n  - id: d\n    table: msdos\n    partitions:\n      - {type: bios_grub, size: 1MiB}\n      - {type: linux, size: remaining, fs: {type: ext4}, mount: /}\n',
    );
    const err = await loadLayout(file).catch((e) => e);
    expect(err.message).toMatch(/m\.yaml:5:\d+: disks\[0\]\.partitions\[0\]\.type: bios_grub exists on gpt only/);
  });
});
