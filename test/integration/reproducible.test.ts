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
  });
});
