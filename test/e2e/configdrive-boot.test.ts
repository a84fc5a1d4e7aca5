import { execa } from 'execa';
import { lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bareon, REPO } from '../helpers/cli.js';
import { deploy } from '../helpers/deploy.js';
import { bootToLogin } from '../helpers/qemu.js';

let dir: string;

/**
 * Polls `dirs` (recursively, not into other filesystems such as the target's mounts) and remembers
 * the largest regular file written since it started, other than `except`.
 */
function watchLargestFile(dirs: string[], except: string) {
  const started = Date.now();
  let largest = { file: undefined as string | undefined, size: 0 };
  let scans = 0;
  let stopped = false;
  const walk = async (d: string, dev?: number): Promise<void> => {
    const st = await stat(d).catch(() => undefined);
    if (!st?.isDirectory() || (dev !== undefined && st.dev !== dev)) return;
    for (const name of await readdir(d).catch(() => [] as string[])) {
      const f = path.join(d, name);
      const fst = await lstat(f).catch(() => undefined);
      if (!fst) continue;
      if (fst.isDirectory()) await walk(f, st.dev);
      else if (fst.isFile() && f !== except && fst.mtimeMs >= started && fst.size > largest.size)
        largest = { file: f, size: fst.size };
    }
  };
  const loop = (async () => {
    while (!stopped) {
      for (const d of dirs) await walk(d);
      scans++;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    scans: () => scans,
    async stop() {
      stopped = true;
      await loop;
      return largest;
    },
  };
}
let manifest: string;

/**
 * meta-data and user-data for one boot: its own hostname, and a bootcmd that prints a marker on the
 * serial console (bootcmd runs before the login prompt; runcmd would run after it, in cloud-final).
 */
async function seed(name: string): Promise<{ meta: string; user: string; marker: string; hostname: string }> {
  const hostname = `cd-${name}`;
  const marker = `BAREON-CONFIGDRIVE-${name.toUpperCase()}-OK`;
  const meta = path.join(dir, `${name}.meta-data`);
  const user = path.join(dir, `${name}.user-data`);
  await writeFile(meta, `instance-id: iid-${name}\nlocal-hostname: ${hostname}\n`);
  await writeFile(user, `#cloud-config\nbootcmd:\n  - echo ${marker} > /dev/ttyS0\n`);
  return { meta, user, marker, hostname };
}

/** Boots `disk` and expects cloud-init to have applied the drive: the hostname at the login prompt and the marker. */
async function bootsWith(disk: string, s: { marker: string; hostname: string }, name: string): Promise<string> {
  const boot = await bootToLogin(disk, {
    firmware: 'bios',
    name,
    until: [new RegExp(`${s.hostname} login:`), new RegExp(s.marker)],
    timeoutMs: 300_000,
  });
  expect(boot.reachedLogin, boot.report).toBe(true);
  expect(boot.log, boot.report).toMatch(new RegExp(`${s.hostname} login:`));
  expect(boot.log, boot.report).toMatch(new RegExp(s.marker));
  console.log(`${name}: hostname and marker after ${boot.seconds.toFixed(1)} s`);
  return boot.log;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join('/var/tmp', 'bareon-e2e-configdrive-'));
  manifest = path.join(inject('bootableImages').cloud, 'debian-cloud.manifest.json');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config drives applied by cloud-init at first boot (TCG)', () => {
  // two boots, one per filesystem and flavour, written two ways: a build to disk, and a deploy whose
  // drive is then replaced after the fact (the deploy chain's drive is the same action either way)
  it('bareon-build --target writes the build straight onto a disk that boots with a config-2 drive on vfat, with no big file anywhere else', async () => {
    const s = await seed('build');
    const disk = path.join(dir, 'build-to-disk.img');
    const out = path.join(dir, 'build-out');
    const watcher = watchLargestFile([tmpdir(), '/var/tmp', out], disk);
    const r = await bareon(
      'build',
      [
        path.join(REPO, 'profiles/debian-cloud.yaml'),
        '--target',
        disk,
        '--size',
        '4GiB',
        '--user-data',
        s.user,
        '--meta-data',
        s.meta,
        '--config-drive-flavor',
        'config-2',
        '-o',
        out,
      ],
      { stdin: 'ignore' },
    );
    const largest = await watcher.stop();
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(largest.size, `largest file written outside the target: ${largest.file}`).toBeLessThanOrEqual(64 * 2 ** 20);
    console.log(
      `build to disk: largest other file ${largest.file ?? 'none'} (${largest.size} bytes), ${watcher.scans()} scans`,
    );
    // the step cache applied (the setup built this profile): only the disk took time
    const manifest = JSON.parse(await readFile(path.join(out, 'debian-cloud.manifest.json'), 'utf8'));
    expect(manifest.steps.every((step: { cached: boolean }) => step.cached)).toBe(true);
    const written = manifest.artifacts.find((a: { format: string }) => a.format === 'deployed');
    expect(written).toMatchObject({ uri: disk, table: 'gpt', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(written.partitions.find((p: { mount?: string }) => p.mount === '/').fs.uuid).toMatch(/^[0-9a-f-]{36}$/);
    await bootsWith(disk, s, 'build');
    await rm(disk);
  });

  it('bareon-deploy --user-data writes a nocloud drive on vfat; bareon run configdrive replaces it with one on iso9660, which cloud-init applies', async () => {
    const first = await seed('deploy');
    const disk = path.join(dir, 'alone.img');
    const r = await deploy([
      manifest,
      disk,
      '--size',
      '4GiB',
      '--grow',
      '--user-data',
      first.user,
      '--meta-data',
      first.meta,
      '--config-drive-flavor',
      'nocloud',
      '--config-drive-fs',
      'vfat',
    ]);
    expect(r.exitCode, String(r.all)).toBe(0);
    const drive = JSON.parse((await execa('sfdisk', ['--json', disk])).stdout).partitiontable.partitions.at(-1);
    const offset = drive.start * 512;
    expect(
      (await execa('mlabel', ['-s', '-i', `${disk}@@${offset}`, '::'], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout,
    ).toMatch(/CIDATA/i);
    expect(
      (await execa('mtype', ['-i', `${disk}@@${offset}`, '::/meta-data'], { env: { MTOOLS_SKIP_CHECK: '1' } })).stdout,
    ).toContain(`local-hostname: ${first.hostname}`);

    const s = await seed('alone');
    const added = await bareon(
      'bareon',
      [
        'run',
        'configdrive',
        '--target',
        disk,
        '--user-data',
        s.user,
        '--meta-data',
        s.meta,
        '--config-drive-fs',
        'iso9660',
      ],
      { stdin: 'ignore' },
    );
    expect(added.exitCode, String(added.all)).toBe(0);
    expect(String(added.all)).toMatch(/\(reused\)/);
    const log = await bootsWith(disk, s, 'alone');
    expect(log, 'the replaced drive is gone').not.toContain(first.marker);
    await rm(disk);
  });
});
