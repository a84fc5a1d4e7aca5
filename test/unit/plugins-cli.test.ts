import { cp, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { bareon, REPO } from '../helpers/cli.js';
import { writePluginPackage } from '../helpers/plugin-package.js';

const helloModule = `
export default {
  summary: 'says hello into $HELLO_OUT',
  async run(ctx) {
    const { writeFile } = await import('node:fs/promises');
    ctx.log('hello from outside');
    await writeFile(process.env.HELLO_OUT, 'hello ran');
  },
};`;

async function helloPackage(dir?: string) {
  return writePluginPackage({
    name: 'bareon-plugin-hello',
    dir,
    entryPoints: { 'bareon.actions': { hello: './hello.js' } },
    modules: { 'hello.js': helloModule },
  });
}

type Row = {
  namespace: string;
  name: string;
  package: string;
  version: string;
  source: string;
  status: string;
  reason?: string;
};
const parseRows = (stdout: unknown) => JSON.parse(String(stdout)) as Row[];

describe('a plugin package outside the repo', () => {
  it('is discovered through BAREON_PLUGIN_PATH, listed and run', async () => {
    const pkg = await helloPackage();
    const out = path.join(path.dirname(pkg), 'out.txt');
    const env = { BAREON_PLUGIN_PATH: pkg, HELLO_OUT: out };

    const list = await bareon('bareon', ['plugins', '--json'], { env });
    expect(list.exitCode).toBe(0);
    expect(parseRows(list.stdout)).toContainEqual(
      expect.objectContaining({
        namespace: 'bareon.actions',
        name: 'hello',
        package: 'bareon-plugin-hello',
        version: '1.0.0',
        source: 'path',
        status: 'ok',
      }),
    );

    const run = await bareon('bareon', ['run', 'hello'], { env });
    expect(run.exitCode, String(run.all)).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('hello ran');
  });

  it('is discovered when installed into a project’s node_modules', async () => {
    const project = await mkdtemp(path.join(tmpdir(), 'bareon-project-'));
    await writeFile(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'site', dependencies: { 'bareon-plugin-hello': '^1.0.0' } }),
    );
    const src = await helloPackage();
    await mkdir(path.join(project, 'node_modules'), { recursive: true });
    await cp(src, path.join(project, 'node_modules', 'bareon-plugin-hello'), { recursive: true });
    const out = path.join(project, 'out.txt');

    const list = await bareon('bareon', ['plugins', '--json'], { cwd: path.join(project), env: { HELLO_OUT: out } });
    expect(parseRows(list.stdout)).toContainEqual(
      expect.objectContaining({ name: 'hello', source: 'project', status: 'ok' }),
    );

    const run = await bareon('bareon', ['run', 'hello'], { cwd: project, env: { HELLO_OUT: out } });
    expect(run.exitCode, String(run.all)).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('hello ran');
  });
});

describe('discovery in the global node_modules', () => {
  it('finds a plugin package installed globally', async () => {
    const prefix = await mkdtemp(path.join(tmpdir(), 'bareon-prefix-'));
    await helloPackage(path.join(prefix, 'lib', 'node_modules', 'bareon-plugin-hello'));
    const rows = parseRows(
      (await bareon('bareon', ['plugins', '--json'], { env: { npm_config_prefix: prefix } })).stdout,
    );
    expect(rows).toContainEqual(expect.objectContaining({ name: 'hello', source: 'global', status: 'ok' }));
  });
});

describe('validate before run, through the command line', () => {
  it('runs none of three actions when the third fails validation, exits 2 and names plugin and field', async () => {
    const marker = await mkdtemp(path.join(tmpdir(), 'bareon-markers-'));
    const action = (name: string, validate: string) => `
import { writeFileSync } from 'node:fs';
export default {
  summary: '${name}',
  validate(objects) { ${validate} },
  async run() { writeFileSync(process.env.MARKERS + '/${name}', 'ran'); },
};`;
    const pkg = await writePluginPackage({
      name: 'bareon-plugin-three',
      entryPoints: { 'bareon.actions': { one: './one.js', two: './two.js', three: './three.js' } },
      modules: {
        'one.js': action('one', ''),
        'two.js': action('two', ''),
        'three.js': action(
          'three',
          "if (!objects.target) { const e = new Error('target: required (give --target)'); throw e; }",
        ),
      },
    });
    const r = await bareon('bareon', ['run', 'one', 'two', 'three'], {
      env: { BAREON_PLUGIN_PATH: pkg, MARKERS: marker },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('bareon.actions/three: target: required (give --target)');
    expect(await readdir(marker)).toEqual([]);
  });
});

describe('broken and clashing plugins', () => {
  it('lists broken plugins with their reason and keeps other commands working', async () => {
    const broken = await writePluginPackage({
      name: 'bareon-plugin-broken',
      version: '0.3.0',
      entryPoints: { 'bareon.actions': { syntax: './syntax.js', shapeless: './shapeless.js', missing: './nope.js' } },
      modules: {
        'syntax.js': 'export default {{ summary: ',
        'shapeless.js': 'export default { summary: "no run here" };',
      },
    });
    const old = await writePluginPackage({
      name: 'bareon-plugin-future',
      apiVersion: 9,
      entryPoints: { 'bareon.actions': { future: './f.js' } },
      modules: { 'f.js': helloModule },
    });
    const hello = await helloPackage();
    const out = path.join(path.dirname(hello), 'out.txt');
    const env = { BAREON_PLUGIN_PATH: [broken, old, hello].join(':'), HELLO_OUT: out };

    const list = await bareon('bareon', ['plugins', '--json'], { env });
    expect(list.exitCode).toBe(0);
    const rows = parseRows(list.stdout);
    const row = (name: string) => rows.find((r) => r.name === name)!;
    expect(row('syntax')).toMatchObject({ status: 'broken', package: 'bareon-plugin-broken', version: '0.3.0' });
    expect(row('syntax').reason).toMatch(/SyntaxError/);
    expect(row('shapeless')).toMatchObject({ status: 'broken' });
    expect(row('shapeless').reason).toMatch(/"run" must be a function/);
    expect(row('missing').reason).toMatch(/module not found: .*nope\.js/);
    expect(row('future').reason).toMatch(/apiVersion 9/);

    const text = await bareon('bareon', ['plugins'], { env });
    expect(text.stdout).toMatch(/syntax\s+BROKEN: SyntaxError/);

    const run = await bareon('bareon', ['run', 'hello'], { env });
    expect(run.exitCode, String(run.all)).toBe(0);

    const useBroken = await bareon('bareon', ['run', 'shapeless'], { env });
    expect(useBroken.exitCode).toBe(2);
    expect(useBroken.stderr).toMatch(/bareon-plugin-broken@0\.3\.0 failed to load: bad shape/);
  });

  it('refuses a name offered by two packages and names both', async () => {
    const a = await writePluginPackage({
      name: 'pkg-a',
      entryPoints: { 'bareon.actions': { twin: './t.js' } },
      modules: { 't.js': helloModule },
    });
    const b = await writePluginPackage({
      name: 'pkg-b',
      version: '2.0.0',
      entryPoints: { 'bareon.actions': { twin: './t.js' } },
      modules: { 't.js': helloModule },
    });
    const env = { BAREON_PLUGIN_PATH: `${a}:${b}` };
    const run = await bareon('bareon', ['run', 'twin'], { env });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('pkg-a@1.0.0');
    expect(run.stderr).toContain('pkg-b@2.0.0');
    const rows = parseRows((await bareon('bareon', ['plugins', '--json'], { env })).stdout).filter(
      (r) => r.name === 'twin',
    );
    expect(rows.map((r) => r.status)).toEqual(['clash', 'clash']);
  });
});

describe('the command line', () => {
  it('installs with npm install -g . and its three bins run', async () => {
    const prefix = await mkdtemp(path.join(tmpdir(), 'bareon-global-'));
    await execa('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', REPO]);
    for (const bin of ['bareon', 'bareon-build', 'bareon-deploy']) {
      const r = await execa(path.join(prefix, 'bin', bin), ['--version']);
      expect(r.stdout).toMatch(/^\d+\.\d+\.\d+$/);
    }
    const plugins = await execa(path.join(prefix, 'bin', 'bareon'), ['plugins', '--json'], {
      env: { BAREON_PLUGIN_PATH: '' },
    });
    expect(JSON.parse(plugins.stdout)).toContainEqual(
      expect.objectContaining({ namespace: 'bareon.builders', name: 'debian', source: 'builtin', status: 'ok' }),
    );
  });

  it('answers --help and --version on every command, and exits 2 on usage errors', async () => {
    for (const bin of ['bareon', 'build', 'deploy'] as const) {
      expect((await bareon(bin, ['--help'])).exitCode).toBe(0);
      expect((await bareon(bin, ['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+$/);
    }
    expect((await bareon('bareon', ['frobnicate'])).exitCode).toBe(2);
    expect((await bareon('build', [])).exitCode).toBe(2);
    expect((await bareon('deploy', ['only-one'])).exitCode).toBe(2);
  });

  it('bareon-deploy validates its source before doing anything', async () => {
    const r = await bareon('deploy', ['/nonexistent/image.qcow2', '/tmp/target.img']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/source \/nonexistent\/image\.qcow2: no such file/);
  });
});

describe('plugins named by a profile', () => {
  it('are discovered from the profile’s plugins: list, relative to the profile', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-profile-plugins-'));
    await writePluginPackage({
      name: 'bareon-builder-custom',
      dir: path.join(dir, 'custom-builder'),
      entryPoints: { 'bareon.builders': { custom: './custom.js' } },
      modules: { 'custom.js': "export default { summary: 'a custom builder', async run() {} };" },
    });
    await writeFile(
      path.join(dir, 'p.yaml'),
      'name: p\nbuilder: custom\nbase: {image: "x:1"}\nplugins: [./custom-builder]\noutputs: [tar]\n',
    );
    const r = await bareon('build', [path.join(dir, 'p.yaml'), '--dry-run']);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(r.stdout).toContain('1. bareon.builders/custom');
  });
});

describe('--log-format json', () => {
  it('prints one event per line: started, log, progress, finished and failed', async () => {
    const pkg = await writePluginPackage({
      name: 'bareon-plugin-events',
      entryPoints: { 'bareon.actions': { good: './good.js', bad: './bad.js' } },
      modules: {
        'good.js':
          "export default { summary: 'g', async run(ctx) { ctx.log('hello'); ctx.progress.start(10); ctx.progress.add(10); ctx.progress.done(); } };",
        'bad.js': "export default { summary: 'b', async run() { throw new Error('it broke'); } };",
      },
    });
    const r = await bareon('bareon', ['run', 'good', 'bad', '--log-format', 'json'], {
      env: { BAREON_PLUGIN_PATH: pkg },
    });
    expect(r.exitCode).toBe(1);
    const events = String(r.stdout)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(events.map((e) => `${e.event}:${e.task}`)).toEqual([
      'started:good',
      'log:good',
      'progress:good',
      'finished:good',
      'started:bad',
      'failed:bad',
    ]);
    expect(events[2]).toMatchObject({ bytes: 10, total: 10 });
    expect(events.at(-1)).toMatchObject({ error: 'it broke' });
    expect(r.stderr).toContain('error: it broke');
  });
});
