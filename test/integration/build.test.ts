import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hygieneItem } from '../../src/objects/hygiene.js';
import { stringify } from 'yaml';
import type { Manifest } from '../../src/objects/index.js';
import { bareon, REPO } from '../helpers/cli.js';
import { bareonContainers, dockerExportList, leftoverContainers } from '../helpers/docker.js';
import { jsonEvents } from '../helpers/events.js';
import { TEST_BASE } from '../helpers/images.js';
import { PODMAN_HOST } from '../setup/podman.js';

const sha256File = async (file: string) => {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c);
  return h.digest('hex');
};
const readManifest = async (file: string): Promise<Manifest> => JSON.parse(await readFile(file, 'utf8'));
const untar = (file: string, ...args: string[]) =>
  execa('tar', ['--zstd', '-xOf', file, ...args], { maxBuffer: 1 << 26 }).then((r) => r.stdout);

/** A small profile on the shared test base, with `run` steps of the caller's choosing. */
async function profileWith(run: string[], name = 'probe'): Promise<{ file: string; out: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-build-'));
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(
    file,
    stringify({ name, base: TEST_BASE, packages: ['less'], hostname: 'probe', run, outputs: ['tar'] }),
  );
  return { file, out: path.join(dir, 'out') };
}

describe('bareon-build profiles/debian-minimal.yaml', () => {
  let out: string;
  let manifest: Manifest;
  let tarFile: string;

  let key: string;

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-minimal-'));
    out = path.join(dir, 'out');
    key = path.join(dir, 'signing-key');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ci@site', '-f', key]);
    const r = await bareon('build', [path.join(REPO, 'profiles/debian-minimal.yaml'), '-o', out, '--sign', key]);
    expect(r.exitCode, String(r.all)).toBe(0);
    manifest = await readManifest(path.join(out, 'debian-minimal.manifest.json'));
    tarFile = path.join(out, 'debian-minimal.tar.zst');
  });

  it('writes a manifest whose sha256 and size match the artifact, with base image and packages', async () => {
    // the tarball, then the SBOM (test/integration/reproducible.test.ts checks what it holds)
    expect(manifest.artifacts.map((a) => a.format)).toEqual(['tar.zst', 'cdx.json']);
    const [artifact] = manifest.artifacts;
    expect(artifact).toMatchObject({ uri: 'debian-minimal.tar.zst', format: 'tar.zst' });
    expect(artifact.sha256).toBe(await sha256File(tarFile));
    expect(artifact.size).toBe((await readFile(tarFile)).length);
    expect(manifest.base_image).toMatch(/^sha256:/);
    expect(manifest.packages).toContainEqual(expect.objectContaining({ name: 'ca-certificates', arch: 'all' }));
    expect(manifest.packages).toContainEqual(expect.objectContaining({ name: 'iputils-ping', arch: 'amd64' }));
  });

  it('signs the manifest with --sign: ssh-keygen -Y verify and bareon-deploy --trust accept it', async () => {
    const file = path.join(out, 'debian-minimal.manifest.json');
    const allowed = path.join(path.dirname(out), 'allowed_signers');
    const pub = (await readFile(`${key}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(allowed, `ci@site namespaces="bareon-manifest" ${pub}\n`);
    const verify = await execa(
      'ssh-keygen',
      ['-Y', 'verify', '-f', allowed, '-I', 'ci@site', '-n', 'bareon-manifest', '-s', `${file}.sig`],
      { input: await readFile(file), reject: false },
    );
    expect(verify.exitCode, verify.stderr).toBe(0);
    const dry = await bareon('deploy', [
      file,
      path.join(path.dirname(out), 'disk.img'),
      '--size',
      '2GiB',
      '--trust',
      allowed,
      '--dry-run',
    ]);
    expect(dry.exitCode, String(dry.all)).toBe(0);
    expect(dry.all).toMatch(/manifest signed by ci@site/);
    // a key that cannot sign is refused before any container starts
    const bad = await bareon('build', [path.join(REPO, 'profiles/debian-minimal.yaml'), '-o', out, '--sign', allowed]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/--sign: \S+allowed_signers: not an SSH private or public key/);
  });

  it('holds the profile’s files, users, hostname and packages', async () => {
    expect(await untar(tarFile, 'etc/motd')).toBe('debian-minimal, built by bareon');
    expect(await untar(tarFile, 'etc/built-by')).toBe('built by bareon');
    expect(await untar(tarFile, 'etc/hostname')).toBe('minimal');
    expect(await untar(tarFile, 'etc/hosts')).toContain('127.0.1.1\tminimal');
    expect(await untar(tarFile, 'etc/passwd')).toMatch(/^admin:x:1000:1000::\/home\/admin:\/bin\/bash$/m);
    expect(await untar(tarFile, 'etc/sudoers.d/90-bareon-admin')).toContain('admin ALL=(ALL:ALL) NOPASSWD: ALL');
    const status = await untar(tarFile, 'var/lib/dpkg/status');
    for (const pkg of ['ca-certificates', 'less', 'iputils-ping', 'sudo'])
      expect(status).toMatch(new RegExp(`^Package: ${pkg}\\nStatus: install ok installed`, 'm'));
    const machineId = (
      await execa('tar', ['--zstd', '-tvf', tarFile, '--wildcards', 'etc/machine-id'], { reject: false })
    ).stdout;
    expect(machineId === '' || /^-r--r--r-- root\/root\s+0 /.test(machineId), machineId).toBe(true);
  });

  it('equals docker export of the final image, less the Docker artifacts', async () => {
    const ours = (await execa('tar', ['--zstd', '-tf', tarFile], { maxBuffer: 1 << 28 })).stdout
      .split('\n')
      .filter(Boolean);
    const raw = await dockerExportList(manifest.image);
    const artifact = (p: string) =>
      p === '.dockerenv' || p === 'run/.containerenv' || p === 'usr/sbin/policy-rc.d' || hygieneItem(p) !== undefined;
    expect(raw.filter(artifact).length).toBeGreaterThan(0); // the export does carry the artifacts and a build's leftovers…
    expect(raw.filter((p) => hygieneItem(p) === 'logs').length).toBeGreaterThan(0);
    expect(ours.sort()).toEqual(raw.filter((p) => !artifact(p)).sort()); // …and ours is the rest, entry for entry
    expect(manifest.hygiene?.removed).toEqual(expect.arrayContaining(['/var/log/dpkg.log']));
  });

  it('preserves ownership, modes, symlinks, device nodes, hardlinks and file capabilities', async () => {
    const listing = (await execa('tar', ['--zstd', '-tvf', tarFile], { maxBuffer: 1 << 28 })).stdout;
    expect(listing).toMatch(/^crw------- root\/root\s+5,1 .* dev\/console$/m); // whichever engine exported it
    expect(listing).toMatch(/^crw-rw-rw- root\/root\s+1,3 .* dev\/null$/m);
    expect(listing).toMatch(/^lrwxrwxrwx root\/root .* bin -> usr\/bin$/m);
    expect(listing).toMatch(/^-rwsr-xr-x root\/root .* usr\/bin\/sudo$/m);
    expect(listing).toMatch(/^drwxrwxrwt root\/root .* tmp\/$/m);
    expect(listing).toMatch(/^-rw-r----- root\/shadow .* etc\/shadow$/m);
    const rawLinks = (await dockerExportList(manifest.image, { verbose: true })).filter((l) =>
      l.startsWith('h'),
    ).length;
    expect(listing.split('\n').filter((l) => l.startsWith('h')).length).toBe(rawLinks);
    const dest = await mkdtemp(path.join(tmpdir(), 'bareon-xattr-'));
    await execa('tar', ['--zstd', '--xattrs', '--xattrs-include=*', '-C', dest, '-xf', tarFile, 'usr/bin/ping']);
    expect((await execa('getcap', [path.join(dest, 'usr/bin/ping')])).stdout).toMatch(/cap_net_raw=ep/);
  });
});

describe('the step cache', () => {
  it('hits every step on an unchanged rebuild, and reruns a changed run step and the ones after it', async () => {
    const nonce = Date.now(); // the cache outlives test runs: make this run's steps new
    const { file, out } = await profileWith([`echo one-${nonce} > /one`, 'echo two > /two']);
    const stepsOf = async () =>
      (await readManifest(path.join(out, 'probe.manifest.json'))).steps.map((s) => [
        s.title.replace(/:.*/, ''),
        s.cached,
      ]);
    expect((await bareon('build', [file, '-o', out])).exitCode).toBe(0);
    const second = await bareon('build', [file, '-o', out]);
    expect(second.exitCode).toBe(0);
    expect(await stepsOf()).toEqual([
      ['prepare', true],
      ['packages (1)', true],
      ['run[0]', true],
      ['run[1]', true],
      ['finalize', true],
    ]);
    await writeFile(file, (await readFile(file, 'utf8')).replace('echo two > /two', 'echo TWO > /two'));
    // --dry-run predicts it, like make -n: the same keys the build then records, and which steps hit
    const dry = await bareon('build', [file, '-o', out, '--dry-run']);
    expect(dry.exitCode, String(dry.all)).toBe(0);
    const predicted = [...String(dry.stdout).matchAll(/^\s+\d+\/5 (.+?): key ([0-9a-f]{12}), (cached|run)/gm)].map(
      (m) => [m[2], m[3] === 'cached'],
    );
    expect(String(dry.stdout)).toContain('steps: 3 of 5 cached, 2 to run');
    expect((await bareon('build', [file, '-o', out])).exitCode).toBe(0);
    const recorded = (await readManifest(path.join(out, 'probe.manifest.json'))).steps.map((st) => [
      st.key.slice(0, 12),
      st.cached,
    ]);
    expect(predicted).toEqual(recorded);
    expect(await stepsOf()).toEqual([
      ['prepare', true],
      ['packages (1)', true],
      ['run[0]', true],
      ['run[1]', false],
      ['finalize', false],
    ]);
    expect((await execa('tar', ['-xOf', path.join(out, 'probe.tar'), 'two'])).stdout).toBe('TWO');
  });

  // an engine-neutral flag: the Podman tier leaves it to the Docker run
  it.skipIf(process.env.DOCKER_HOST === PODMAN_HOST)('reruns everything with --no-cache', async () => {
    const { file, out } = await profileWith(['true']);
    await bareon('build', [file, '-o', out]);
    expect((await bareon('build', [file, '-o', out, '--no-cache'])).exitCode).toBe(0);
    const steps = (await readManifest(path.join(out, 'probe.manifest.json'))).steps;
    expect(steps.every((s) => !s.cached)).toBe(true);
  });
});

describe('a failing build', () => {
  it('reports the step, command, exit code and output tail, exits 1 and leaves no container', async () => {
    const { file, out } = await profileWith([
      'echo preparing; for i in $(seq 1 40); do echo line-$i; done; echo about to fail >&2; exit 3',
    ]);
    const r = await bareon('build', [file, '-o', out]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/build step 3\/4 "run\[0\]: .*" failed with exit code 3/);
    expect(r.stderr).toContain('exit 3');
    expect(r.stderr).toContain('about to fail');
    expect(r.stderr).toContain('line-40');
    expect(r.stderr).not.toContain('line-5\n');
    expect(await leftoverContainers()).toEqual([]);
  });

  it('cleans up its container after SIGINT mid-step and exits 130', async () => {
    const { file, out } = await profileWith([`echo started-${Date.now()}; sleep 600`]);
    const child = execa(
      process.execPath,
      [path.join(REPO, 'dist/src/cli/bareon-build.js'), file, '-o', out, '--log-format', 'json'],
      { reject: false },
    );
    try {
      await new Promise<void>((resolve) =>
        child.stdout!.on('data', (d: Buffer) => {
          if (jsonEvents(d.toString()).some((e) => e.event === 'log' && String(e.line).startsWith('started-')))
            resolve();
        }),
      );
      expect((await bareonContainers()).length).toBe(1);
    } finally {
      // also when an assertion above failed: a build left sleeping would hold its container for ten minutes
      child.kill('SIGINT');
    }
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(await leftoverContainers()).toEqual([]);
  });
});

describe('artifacts of an unchanged build', () => {
  it('are reused when the root filesystem is the same and the file is intact, and rewritten otherwise', async () => {
    const { file, out } = await profileWith([`echo reuse-${Date.now()} > /r`]);
    expect((await bareon('build', [file, '-o', out])).exitCode).toBe(0);
    const tarFile = path.join(out, 'probe.tar');
    const first = await sha256File(tarFile);
    const titles = async (args: string[] = []) => {
      const r = await bareon('build', [file, '-o', out, '--log-format', 'json', ...args]);
      expect(r.exitCode, String(r.all)).toBe(0);
      return jsonEvents(r.stdout)
        .filter((e) => e.event === 'finished')
        .map((e) => e.task);
    };
    expect((await titles()).some((t) => /probe\.tar: up to date/.test(t))).toBe(true);
    expect(await sha256File(tarFile)).toBe(first);
    expect((await readManifest(path.join(out, 'probe.manifest.json'))).packages.length).toBeGreaterThan(50);

    await writeFile(tarFile, 'damaged');
    expect((await titles()).some((t) => /up to date/.test(t))).toBe(false);
    expect((await readManifest(path.join(out, 'probe.manifest.json'))).artifacts[0].sha256).toBe(
      await sha256File(tarFile),
    );
  });
});
