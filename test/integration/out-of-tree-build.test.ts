import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';
import { leftovers } from '../helpers/deploy.js';
import { projectWithFixturePlugin } from '../helpers/fixture-plugin.js';
import { TEST_BASE } from '../helpers/images.js';

/**
 * The out-of-tree action of test/fixtures/bareon-plugin-fixture joins a build to disk
 * (`bareon-build --target`) through the profile's `with:`: the root filesystem streams from the
 * container onto the target, and the action writes its file into it, in the deploy chain.
 */
let project: string;
let dir: string;

beforeAll(async () => {
  project = await projectWithFixturePlugin();
  dir = await mkdtemp(path.join(tmpdir(), 'oot-build-'));
});
afterAll(async () => {
  await rm(project, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

it("an out-of-tree action joins bareon-build --target through the profile's with:", async () => {
  const profile = path.join(dir, 'oot.yaml');
  await writeFile(
    profile,
    stringify({
      name: 'oot',
      base: TEST_BASE,
      hostname: 'oot',
      run: ['echo built > /built'],
      outputs: ['tar'],
      with: ['motd'],
    }),
  );
  const target = path.join(dir, 'disk.img');
  const args = [
    profile,
    '--target',
    target,
    '--size',
    '1GiB',
    '--layout',
    path.join(REPO, 'test/fixtures/layouts/plain-ext4.yaml'),
    '-o',
    path.join(dir, 'out'),
  ];
  const plan = await bareon('build', [...args, '--dry-run'], { cwd: project, stdin: 'ignore' });
  expect(plan.exitCode, String(plan.all)).toBe(0);
  expect(String(plan.stdout)).toMatch(/\d+\. bareon\.actions\/motd \(oot\.yaml with\[0\]\)/);
  const r = await bareon('build', args, { cwd: project, stdin: 'ignore' });
  expect(r.exitCode, String(r.all)).toBe(0);
  const cat = (file: string) =>
    execa('debugfs', ['-R', `cat ${file}`, `${target}?offset=${2 ** 20}`], { stderr: 'ignore' }).then((x) => x.stdout);
  expect(await cat('/etc/motd')).toBe('deployed by bareon-plugin-fixture from build:oot');
  expect(await cat('/built')).toBe('built');
  const manifest = JSON.parse(await readFile(path.join(dir, 'out/oot.manifest.json'), 'utf8'));
  expect(manifest.artifacts.map((a: { format: string }) => a.format)).toEqual(['deployed', 'cdx.json']);
  expect(await leftovers(target)).toEqual([]);
});
