import { execa } from 'execa';
import { mkdtemp, open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bareon } from '../helpers/cli.js';
import { leftovers, sha256File, tarZst } from '../helpers/deploy.js';

const MiB = 2 ** 20;

/** The first MiB of a file: where the MBR and the primary GPT live. */
async function head(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MiB);
    await fh.read(buf, 0, MiB, 0);
    return buf;
  } finally {
    await fh.close();
  }
}

/**
 * Jobs that go wrong, run with `bareon agent --job` on this machine (the same code path as the agent's
 * boot, minus finding the job disk and the power): each ends with an error and a last line
 * `bareon-job: failed: REASON`, and leaves the disks' tables as they were, or cleared once writing began.
 */
describe('agent jobs that fail', () => {
  let dir: string;
  let source: string;
  let sourceSha: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bareon-jobs-'));
    source = path.join(dir, 'rootfs.tar.zst');
    await tarZst(source, [
      ['etc/hostname', 'job-test\n'],
      ['usr/bin/hello', '#!/bin/sh\necho hi\n'],
    ]);
    sourceSha = await sha256File(source);
  });

  const runJob = async (name: string, job: object) => {
    const file = path.join(dir, `${name}.json`);
    await writeFile(file, JSON.stringify(job));
    const r = await bareon('bareon', ['agent', '--job', file]);
    const lines = String(r.stdout).trim().split('\n');
    return { r, last: lines[lines.length - 1], stdout: String(r.stdout), stderr: String(r.stderr) };
  };

  it('a wrong checksum fails after writing started, and the target loses its partition table', async () => {
    const disk = path.join(dir, 'disk.img');
    await writeFile(disk, '');
    await truncate(disk, 256 * MiB);
    await execa('sgdisk', ['--new=1:2048:+64M', disk]);
    const layout = {
      disks: [
        { id: 't', device: disk, partitions: [{ type: 'linux', size: 'remaining', fs: { type: 'ext4' }, mount: '/' }] },
      ],
    };
    const { r, last, stdout } = await runJob('bad-checksum', {
      source: source,
      checksum: `sha256:${'0'.repeat(64)}`,
      layout,
      when_done: 'poweroff',
    });
    expect(r.exitCode, r.all).toBe(1);
    expect(last).toMatch(/^bareon-job: failed: .*sha256/);
    expect(stdout).toMatch(/"event":"started","task":"partitioning"/);
    expect(stdout).toMatch(/when_done: poweroff skipped/);
    expect(
      (await head(disk)).every((b) => b === 0),
      'MBR and primary GPT cleared',
    ).toBe(true);
    expect(await leftovers(disk)).toEqual([]);
    // the right checksum deploys
    const ok = await runJob('good-checksum', {
      source: source,
      checksum: `sha256:${sourceSha}`,
      layout,
      when_done: 'none',
    });
    expect(ok.last, ok.r.all).toBe('bareon-job: ok');
  });

  it('a hint that matches no disk fails before anything is written, listing the disks seen', async () => {
    const layout = {
      disks: [{ id: 't', partitions: [{ type: 'linux', size: 'remaining', fs: { type: 'ext4' }, mount: '/' }] }],
    };
    const { r, last, stderr } = await runJob('no-match', {
      source: source,
      checksum: `sha256:${sourceSha}`,
      layout,
      target_hints: { serial: 'no-such-disk' },
    });
    expect(r.exitCode, r.all).toBe(1);
    expect(last).toMatch(/^bareon-job: failed: --target-hint: no disk matches serial=no-such-disk; disks seen:/);
    expect(stderr).toMatch(/disks seen:\n\s+\/dev\/\w+: size=/);
  });

  it('a job that does not validate names the field', async () => {
    const { r, last } = await runJob('invalid', { source: source, when_done: 'later' });
    expect(r.exitCode).toBe(1);
    expect(last).toMatch(/^bareon-job: failed: .*invalid\.json/);
  });
});
