import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { dockerArtifactRules } from '../../src/rootfs/docker-artifacts.js';
import { HygieneSchema, SSH_KEYGEN_DROPIN } from '../../src/objects/hygiene.js';
import { TarFilter } from '../../src/rootfs/tar-filter.js';

const REMOVED = [
  'etc/ssh/ssh_host_ed25519_key',
  'etc/ssh/ssh_host_ed25519_key.pub',
  'etc/ssh/ssh_host_rsa_key',
  'var/lib/dbus/machine-id',
  'var/lib/systemd/random-seed',
  'var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease',
  'var/cache/apt/archives/less_590-2_amd64.deb',
  'var/cache/apt/pkgcache.bin',
  'var/log/apt/history.log',
  'var/log/apt/term.log',
  'var/log/dpkg.log',
  'var/log/alternatives.log',
  'var/cache/debconf/config.dat-old',
  'var/lib/dpkg/status-old',
];
const KEPT = [
  'etc/ssh/sshd_config',
  'usr/sbin/sshd',
  'etc/machine-id',
  'var/log/journal/readme',
  'var/cache/debconf/config.dat',
  'var/lib/dpkg/status',
];

/** A root filesystem tar as docker export gives it, with a build's leftovers. */
async function exported(): Promise<Buffer> {
  const pack = tar.pack();
  for (const name of [...REMOVED, ...KEPT])
    pack.entry({ name, mode: 0o644 }, name === 'etc/machine-id' ? '0123456789abcdef0123456789abcdef\n' : `${name}\n`);
  pack.finalize();
  return buffer(pack);
}

/** Entry names (and the machine-id's content) after the export rules. */
async function afterRules(
  hygiene?: Record<string, string>,
): Promise<{ names: string[]; machineId: string; removed: string[]; dropin?: string }> {
  const removed: string[] = [];
  const out = Readable.from([await exported()]).pipe(
    new TarFilter(dockerArtifactRules({ hostname: 'h', hygiene: hygiene && HygieneSchema.parse(hygiene) }, removed)),
  );
  const extract = tar.extract();
  const names: string[] = [];
  let machineId = '';
  let dropin: string | undefined;
  extract.on('entry', async (header, stream, next) => {
    const data = (await buffer(stream)).toString();
    names.push(header.name);
    if (header.name === 'etc/machine-id') machineId = data;
    if (header.name === SSH_KEYGEN_DROPIN.name) dropin = data;
    next();
  });
  out.pipe(extract);
  await new Promise((resolve, reject) => extract.on('finish', resolve).on('error', reject));
  return { names, machineId, removed, dropin };
}

describe('first-boot hygiene in the export rules', () => {
  it('removes host keys, the D-Bus machine-id copy, the seed, apt state, build logs and backups; sshd makes keys at boot', async () => {
    const r = await afterRules();
    for (const name of REMOVED) expect(r.names, name).not.toContain(name);
    for (const name of KEPT) expect(r.names, name).toContain(name);
    expect(r.machineId).toBe('');
    expect(r.removed.sort()).toEqual(REMOVED.map((n) => `/${n}`).sort());
    expect(r.dropin).toMatch(/ExecStartPre=\/usr\/bin\/ssh-keygen -A\nExecStartPre=\/usr\/sbin\/sshd -t/);
  });

  it('keeps what the profile keeps, item by item', async () => {
    const r = await afterRules({ ssh_host_keys: 'keep', logs: 'keep' });
    expect(r.names).toContain('etc/ssh/ssh_host_ed25519_key');
    expect(r.names).toContain('var/log/dpkg.log');
    expect(r.names).not.toContain('var/lib/systemd/random-seed');
    expect(r.dropin).toBeUndefined();
  });
});

describe('engine artifacts in the export rules', () => {
  it("drop Podman's /run/.containerenv and make /dev/console the 5:1 node, whatever the engine left there", async () => {
    const pack = tar.pack();
    pack.entry({ name: 'run/.containerenv', mode: 0o755 }, '');
    pack.entry({ name: 'dev/console', mode: 0o755 }, '');
    pack.entry({ name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 });
    pack.finalize();
    const out = Readable.from([await buffer(pack)]).pipe(new TarFilter(dockerArtifactRules({ hostname: 'h' })));
    const extract = tar.extract();
    const entries: { name: string; type?: string | null; mode?: number; devmajor?: number; devminor?: number }[] = [];
    extract.on('entry', (h, stream, next) => {
      entries.push({ name: h.name, type: h.type, mode: h.mode, devmajor: h.devmajor, devminor: h.devminor });
      stream.resume();
      stream.on('end', next);
    });
    out.pipe(extract);
    await new Promise((resolve, reject) => extract.on('finish', resolve).on('error', reject));
    expect(entries.map((e) => e.name)).not.toContain('run/.containerenv');
    expect(entries.find((e) => e.name === 'dev/console')).toMatchObject({
      type: 'character-device',
      mode: 0o600,
      devmajor: 5,
      devminor: 1,
    });
    expect(entries.find((e) => e.name === 'dev/null')).toMatchObject({
      type: 'character-device',
      devmajor: 1,
      devminor: 3,
    });
  });
});
