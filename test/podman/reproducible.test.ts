import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';

describe('one profile, two engines', () => {
  it('gives byte-identical tar.zst files through Podman and through Docker with the same SOURCE_DATE_EPOCH', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-engines-'));
    const profile = path.join(REPO, 'profiles/debian-minimal.yaml');
    const env = { SOURCE_DATE_EPOCH: '1767225600' };
    const viaPodman = await bareon('build', [profile, '-o', path.join(dir, 'podman')], { env });
    expect(viaPodman.exitCode, String(viaPodman.all).slice(-3000)).toBe(0);
    const viaDocker = await bareon('build', [profile, '-o', path.join(dir, 'docker')], {
      env: { ...env, DOCKER_HOST: 'unix:///var/run/docker.sock' },
    });
    expect(viaDocker.exitCode, String(viaDocker.all).slice(-3000)).toBe(0);
    const diff = await bareon('bareon', [
      'diff',
      path.join(dir, 'docker', 'debian-minimal.tar.zst'),
      path.join(dir, 'podman', 'debian-minimal.tar.zst'),
    ]);
    expect(diff.exitCode, `bareon diff:\n${diff.all}`).toBe(0);
  });
});
