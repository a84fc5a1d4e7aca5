import { execa } from 'execa';
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO } from './cli.js';

/**
 * A project directory with test/fixtures/bareon-plugin-fixture installed as a user installs a plugin:
 * packed with `npm pack`, then `npm install`ed from the tarball (no registry), beside bareon itself
 * linked in as `npm link bareon` would. bareon run in this directory discovers the plugin.
 */
export async function projectWithFixturePlugin(): Promise<string> {
  const project = await mkdtemp(path.join(tmpdir(), 'bareon-site-'));
  const pack = await execa('npm', ['pack', '--silent', path.join(REPO, 'test/fixtures/bareon-plugin-fixture')], {
    cwd: project,
  });
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'site', private: true }));
  await execa(
    'npm',
    ['install', '--offline', '--no-audit', '--no-fund', '--legacy-peer-deps', `./${pack.stdout.trim()}`],
    { cwd: project },
  );
  await mkdir(path.join(project, 'node_modules'), { recursive: true });
  await symlink(REPO, path.join(project, 'node_modules/bareon'));
  return project;
}
