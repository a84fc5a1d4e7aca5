import { execa } from 'execa';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DockerEngine, RUN_LABEL } from '../../src/docker/engine.js';
import { TEST_BASE_IMAGE } from '../helpers/images.js';
import { bareon } from '../helpers/cli.js';

const containersOf = async (runId: string) =>
  (await execa('docker', ['ps', '-aq', '--filter', `label=${RUN_LABEL}=${runId}`])).stdout.trim();

describe('the Docker adapter, against the real daemon', () => {
  it('runs a container from the locally bootstrapped image: stdout, stderr, exit code, then removes it', async () => {
    const runId = `it-${Date.now()}`;
    const engine = await DockerEngine.connect(runId);
    const lines: string[] = [];
    const result = await engine.run(
      { image: TEST_BASE_IMAGE, cmd: ['sh', '-c', 'echo out-1; echo err-1 >&2; cat /etc/debian_version; exit 7'] },
      { onLine: (line, stream) => lines.push(`${stream}:${line}`) },
    );
    expect(result.exitCode).toBe(7);
    expect(result.stdout).toMatch(/^out-1\n12\.\d+\n$/);
    expect(result.stderr).toBe('err-1\n');
    expect(lines).toContain('stderr:err-1');
    expect(await containersOf(runId)).toBe('');
  });

  it('labels containers, execs in them, exports, commits and imports', async () => {
    const runId = `it-${Date.now()}`;
    const engine = await DockerEngine.connect(runId);
    const container = await engine.createContainer({ image: TEST_BASE_IMAGE, cmd: ['sleep', 'infinity'] });
    try {
      await container.start();
      expect(await containersOf(runId)).toBe(container.id.slice(0, 12));
      const exec = await engine.exec(container.id, ['sh', '-c', 'echo hi > /marker && id -u && false']);
      expect(exec).toMatchObject({ exitCode: 1, stdout: '0\n' });

      const imageId = await engine.commit(container.id, { 'org.bareon.test': runId });
      const inspected = await engine.inspectImage(imageId);
      expect(inspected?.Config.Labels).toMatchObject({ 'org.bareon.test': runId });

      const tar = await engine.exportContainer(container.id);
      const list = await execa('tar', ['-t'], { input: tar as unknown as Readable });
      expect(list.stdout.split('\n')).toContain('marker');

      const imported = await engine.importImage(
        await engine.exportContainer(container.id),
        { repo: 'bareon-test/imported', tag: runId },
        engine.labels(),
      );
      const check = await engine.run({ image: imported, cmd: ['cat', '/marker'] });
      expect(check.stdout).toBe('hi\n');
      await engine.removeImage(imported, true);
      await engine.removeImage(imageId, true);
    } finally {
      await engine.removeContainer(container.id);
    }
    expect(await containersOf(runId)).toBe('');
  });

  it('says clearly when no daemon answers', async () => {
    const err = await DockerEngine.connect('x', { socketPath: '/nonexistent/docker.sock' }).catch((e) => e);
    expect(err.message).toMatch(/cannot reach a Docker daemon/);
    expect(err.hint).toMatch(/DOCKER_HOST/);
    const gc = await bareon('bareon', ['gc'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(gc.exitCode).toBe(1);
    expect(gc.stderr).toMatch(/cannot reach a Docker daemon at unix:\/\/\/nonexistent\/docker\.sock/);
  });
});
