import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BIN, REPO } from '../helpers/cli.js';

let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("the README's out-of-tree action walk-through works exactly as written", async () => {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Writing a plugin'));
  const blocks = [...section.matchAll(/```\w+ (file=(\S+)|run)\n([\s\S]*?)```/g)];
  const files = blocks.filter((b) => b[2]);
  const run = blocks.find((b) => b[1] === 'run');
  expect(files.map((b) => b[2])).toEqual([
    'bareon-plugin-scratch/package.json',
    'bareon-plugin-scratch/scratch.js',
    'layout.yaml',
  ]);
  expect(run).toBeDefined();

  dir = await mkdtemp(path.join(tmpdir(), 'bareon-walkthrough-'));
  for (const [, , file, text] of files) {
    await mkdir(path.dirname(path.join(dir, file!)), { recursive: true });
    await writeFile(path.join(dir, file!), text);
  }
  // `bareon` on PATH, as after `npm install -g`
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  await writeFile(path.join(bin, 'bareon'), `#!/bin/sh\nexec ${process.execPath} ${BIN.bareon} "$@"\n`);
  await chmod(path.join(bin, 'bareon'), 0o755);

  const r = await execa('bash', ['-euo', 'pipefail', '-c', run![3]], {
    cwd: dir,
    reject: false,
    all: true,
    env: { PATH: `${bin}:${process.env.PATH}` },
  });
  expect(r.exitCode, String(r.all)).toBe(0);
  expect(String(r.stdout)).toMatch(/scratch.*bareon-plugin-scratch.*1\.0\.0/);

  const disk = path.join(dir, 'disk.img');
  const table = JSON.parse((await execa('sfdisk', ['--json', disk])).stdout).partitiontable;
  expect(table.partitions).toHaveLength(2);
  const scratch = table.partitions[1];
  expect(scratch.name).toBe('scratch');
  expect(scratch.size * 512).toBe(16 * 2 ** 20);
  const fh = await (await import('node:fs/promises')).open(disk, 'r');
  const stamp = Buffer.alloc(14);
  await fh.read(stamp, 0, 14, scratch.start * 512);
  await fh.close();
  expect(stamp.toString()).toBe('scratch space\n');
});
