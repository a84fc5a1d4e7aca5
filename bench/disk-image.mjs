// bench/disk-image: the bootable qcow2 build, bareon against a shell pipeline of the standard tools
// (bench/shell-bootable.sh), both from the same imported base image with the same packages, and the
// base bootstrap itself (bareon image bootstrap vs mmdebstrap | docker import).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN, fmt, REPO, run, table } from './lib.mjs';

const { loadProfile } = await import(path.join(REPO, 'dist/src/objects/index.js'));
const { allPackages } = await import(path.join(REPO, 'dist/builders/common/steps.js'));
const { PACKAGE_MANAGERS } = await import(path.join(REPO, 'dist/src/build/package-manager.js'));
const { completeBootstrap, bootstrapTag } = await import(path.join(REPO, 'dist/src/docker/base-image.js'));

const work = await mkdtemp(path.join(tmpdir(), 'bareon-bench-disk-'));
const { profile } = await loadProfile(path.join(REPO, 'profiles/debian-bootable.yaml'));
const packages = allPackages(profile, PACKAGE_MANAGERS.apt, 'debian').join(' ');
const spec = await completeBootstrap(profile.base);
const tag = bootstrapTag(spec);
const base = `${tag.repo}:${tag.tag}`;
const benchProfile = path.join(work, 'bench-disk.yaml');
await writeFile(
  benchProfile,
  (await readFile(path.join(REPO, 'profiles/debian-bootable.yaml'), 'utf8'))
    .replace(/^name: .*$/m, 'name: bench-disk')
    .replace(/^outputs: .*$/m, 'outputs: [qcow2]'),
);

console.log('bench/disk-image: warming up (base image and toolbox)…');
await run([process.execPath, BIN('bareon'), 'image', 'bootstrap', `${spec.distro}:${spec.suite}`]);
await run([process.execPath, BIN('bareon-build'), benchProfile, '-o', path.join(work, 'warm')]);

const rounds = 2;
const ours = [];
const theirs = [];
for (let i = 0; i < rounds; i++) {
  ours.push(
    (await run([process.execPath, BIN('bareon-build'), benchProfile, '-o', path.join(work, `out-${i}`), '--no-cache']))
      .seconds,
  );
  theirs.push(
    (await run(['bash', path.join(REPO, 'bench/shell-bootable.sh'), base, path.join(work, `shell-${i}`), packages]))
      .seconds,
  );
}

// A second profile that differs from the first only in packages the archive cache holds: its package
// step and the ones after it run, and no package is downloaded.
const secondProfile = path.join(work, 'bench-second.yaml');
await writeFile(
  secondProfile,
  (await readFile(benchProfile, 'utf8')).replace(/^name: .*$/m, 'name: bench-second').replace(
    /^packages: \[(.*)\]$/m,
    (_, list) =>
      `packages: [${list
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== 'less')
        .join(', ')}]`,
  ),
);
const second = await run([process.execPath, BIN('bareon-build'), secondProfile, '-o', path.join(work, 'second')]);

// A changed run step with a warm cache: what iterating on a profile costs (the shell pipeline has no cache).
await writeFile(
  benchProfile,
  (await readFile(benchProfile, 'utf8')).replace('built by bareon', `built by bareon ${Date.now()}`),
);
const changed = await run([process.execPath, BIN('bareon-build'), benchProfile, '-o', path.join(work, 'changed')]);

// Bootstrap: a mirror URL spelled differently gives a new digest, so this really bootstraps.
const mirror = `${spec.mirror.replace(/\/$/, '')}/`;
const boot = await run([
  process.execPath,
  BIN('bareon'),
  'image',
  'bootstrap',
  'debian:bookworm',
  '--mirror',
  mirror,
  '--tag',
  'bareon-bench/bootstrap:latest',
]);
const shellBoot = await run(
  `mmdebstrap --variant=minbase --format=tar bookworm - ${mirror} 2>/dev/null | docker import - bareon-bench/shell-bootstrap:latest >/dev/null`,
  { shell: true },
);
const benchTag = bootstrapTag({ ...spec, mirror });
await run(
  `docker rmi -f bareon-bench/shell-bootstrap:latest bareon-bench/bootstrap:latest ${benchTag.repo}:${benchTag.tag} >/dev/null 2>&1 || true`,
  { shell: true },
);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const o = median(ours);
const t = median(theirs);
console.log(`\nsame base image (${base}), same ${packages.split(' ').length} packages, GPT BIOS+UEFI, qcow2\n`);
console.log(
  table([
    ['measure', 'bareon', 'shell pipeline', 'ratio', 'target'],
    ['bootable qcow2 from the base image, s', fmt(o), fmt(t), `${fmt(o / t, 2)}`, '≤ 1.15'],
    [
      'base bootstrap (mmdebstrap → docker import), s',
      fmt(boot.seconds),
      fmt(shellBoot.seconds),
      `${fmt(boot.seconds / shellBoot.seconds, 2)}`,
      '',
    ],
    [
      'end to end: bootstrap + bootable qcow2, s',
      fmt(boot.seconds + o),
      fmt(shellBoot.seconds + t),
      `${fmt((boot.seconds + o) / (shellBoot.seconds + t), 2)}`,
      '≤ 1.15',
    ],
    [
      'a second profile, packages in the archive cache, s',
      fmt(second.seconds),
      `${fmt(t)} (no cache)`,
      `${fmt(second.seconds / t, 2)}`,
      '≤ 0.7',
    ],
    [
      'a changed run step, cache warm, s',
      fmt(changed.seconds),
      `${fmt(t)} (no cache)`,
      `${fmt(changed.seconds / t, 2)}`,
      '',
    ],
  ]),
);
console.log(`\nruns: bareon ${ours.map((s) => fmt(s)).join(' ')}; shell ${theirs.map((s) => fmt(s)).join(' ')}`);
console.log(
  'bareon runs --no-cache: every build step reruns in containers and is committed; the toolbox image is cached (like host tools),',
);
console.log(
  'and .deb files come from the shared apt archive cache (bareon-apt-archives) once a build has fetched them; the shell pipeline downloads them each time.',
);
await rm(work, { recursive: true, force: true });
