import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/objects/index.js';
import { bareon, REPO } from '../helpers/cli.js';
import { expectIdentical } from '../helpers/disk-checks.js';
import { TEST_EPOCH as EPOCH } from '../helpers/images.js';

async function build(profile: string, out: string, epoch: number, ...flags: string[]): Promise<void> {
  const r = await bareon('build', [profile, '-o', out, ...flags], { env: { SOURCE_DATE_EPOCH: String(epoch) } });
  expect(r.exitCode, String(r.all).slice(-3000)).toBe(0);
}

/**
 * The SBOM of two builds with the same epoch: byte-identical, accepted by the CycloneDX library's
 * strict validator, listed and pinned in the manifest, naming the tarball by its sha256, and listing
 * exactly the packages `dpkg-query -W` finds installed in the image the manifest names.
 */
async function checkSbom(a: string, b: string, manifest: Manifest): Promise<void> {
  const [fa, fb] = [a, b].map((dir) => path.join(dir, 'debian-minimal.cdx.json'));
  await expectIdentical(fa, fb);
  const text = await readFile(fa, 'utf8');
  expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text)).toBeNull();
  const listed = manifest.artifacts.find((x) => x.format === 'cdx.json');
  expect(listed).toMatchObject({ uri: 'debian-minimal.cdx.json', size: Buffer.byteLength(text) });
  expect(listed!.sha256).toBe(createHash('sha256').update(text).digest('hex'));
  const doc = JSON.parse(text);
  expect(doc.metadata.timestamp).toBe('2026-01-01T00:00:00.000Z');
  const tarball = manifest.artifacts.find((x) => x.format === 'tar.zst')!;
  expect(doc.components).toContainEqual(
    expect.objectContaining({ type: 'file', name: tarball.uri, hashes: [{ alg: 'SHA-256', content: tarball.sha256 }] }),
  );
  const inSbom = (doc.components as { purl?: string; name: string; version: string }[])
    .filter((x) => x.purl?.startsWith('pkg:deb/debian/'))
    .map((x) => `${x.name} ${x.version} ${new URLSearchParams(x.purl!.split('?')[1]).get('arch')}`)
    .sort();
  const query = await execa('docker', [
    'run',
    '--rm',
    '--network',
    'none',
    manifest.image,
    'dpkg-query',
    '-W',
    '-f',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own field syntax
    '${db:Status-Abbrev}|${Package} ${Version} ${Architecture}\\n',
  ]);
  const installed = query.stdout
    .split('\n')
    .filter((l) => l.startsWith('ii |'))
    .map((l) => l.slice(4))
    .sort();
  expect(installed.length).toBeGreaterThan(50);
  expect(inSbom).toEqual(installed);
  // Debian's own packages whose copyright files are machine-readable carry their licenses
  const bash = doc.components.find((x: { name: string }) => x.name === 'bash');
  expect(bash.purl).toMatch(/^pkg:deb\/debian\/bash@[^?]+\?arch=amd64&distro=debian-12$/);
  expect(bash.licenses.length).toBeGreaterThan(0);
}

describe('reproducible artifacts with SOURCE_DATE_EPOCH', () => {
  it('two --no-cache builds of profiles/debian-minimal.yaml give byte-identical tar.zst files; bareon diff names what another epoch changes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-repro-'));
    const profile = path.join(REPO, 'profiles/debian-minimal.yaml');
    const [a, b, c] = ['a', 'b', 'c'].map((x) => path.join(dir, x));
    await build(profile, a, EPOCH, '--no-cache');
    await build(profile, b, EPOCH, '--no-cache');
    await expectIdentical(path.join(a, 'debian-minimal.tar.zst'), path.join(b, 'debian-minimal.tar.zst'));
    const manifest: Manifest = JSON.parse(await readFile(path.join(a, 'debian-minimal.manifest.json'), 'utf8'));
    expect(manifest.created).toBe('2026-01-01T00:00:00.000Z');
    expect(manifest.epoch).toBe(EPOCH);
    await checkSbom(a, b, manifest);

    // a day later: the clamped times move, and so does the password change date in /etc/shadow
    await build(profile, c, EPOCH + 86400);
    const r = await bareon('bareon', [
      'diff',
      path.join(a, 'debian-minimal.tar.zst'),
      path.join(c, 'debian-minimal.tar.zst'),
      '--limit',
      '5000',
    ]);
    expect(r.exitCode, String(r.all)).toBe(1);
    expect(r.stdout).toMatch(
      /^ {2}~ \/etc\/shadow {2}content [0-9a-f]{12} → [0-9a-f]{12}, mtime 2026-01-01T00:00:00Z → 2026-01-02T00:00:00Z$/m,
    );
    expect(r.stdout).toMatch(/files: 0 added, 0 removed, \d+ changed/);
    const m = await bareon('bareon', [
      'diff',
      path.join(a, 'debian-minimal.manifest.json'),
      path.join(c, 'debian-minimal.manifest.json'),
    ]);
    expect(m.exitCode).toBe(1);
    expect(m.stdout).toContain('~ epoch: 1767225600 → 1767312000');
    expect(m.stdout).toMatch(/~ tar\.zst sha256 [0-9a-f]{12} → [0-9a-f]{12}/);
    // the same packages a day later; the SBOMs differ in the artifact they list
    const s = await bareon('bareon', [
      'diff',
      path.join(a, 'debian-minimal.cdx.json'),
      path.join(c, 'debian-minimal.cdx.json'),
    ]);
    expect(s.exitCode, String(s.all)).toBe(1);
    expect(s.stdout).toMatch(/^packages: 0 added, 0 removed, 0 changed \(of (\d+) and \1\)$/m);
    expect(s.stdout).toMatch(/^ {2}~ tar\.zst sha256 [0-9a-f]{12} → [0-9a-f]{12}$/m);
  });
});
