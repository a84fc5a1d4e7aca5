import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  dep5Licenses,
  docArchiveLicenses,
  parseDpkgPackages,
  parseOsRelease,
  type ImagePackage,
} from '../../src/rootfs/image-packages.js';
import { cycloneDxSbom, sbomComponents, type SbomInput } from '../../src/rootfs/sbom.js';
import { bareon } from '../helpers/cli.js';

const STATUS = `Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: bash
Essential: yes
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b7
Source: bash (5.2.15-2)

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: ca-certificates
Status: install ok installed
Architecture: all
Version: 20230311
`;

const DEP5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: bash
License: GPL-3+

Files: *
Copyright: 1987-2022 Free Software Foundation, Inc.
License: GPL-3+

Files: lib/readline/*
Copyright: 1987-2022 Free Software Foundation, Inc.
License: GPL-3+ or BSD-3-clause

Files: support/install-sh
Copyright: 1994 X Consortium
License: MIT

License: GPL-3+
 This program is free software; you can redistribute it
 .
 On Debian systems, the complete text is in /usr/share/common-licenses/GPL-3.
`;

const OS_RELEASE = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`;

const EPOCH = 1767225600;

function fixture(): SbomInput {
  const packages: ImagePackage[] = parseDpkgPackages(STATUS);
  packages.find((p) => p.name === 'bash')!.licenses = dep5Licenses(DEP5)!;
  return {
    name: 'probe',
    epoch: EPOCH,
    manager: 'dpkg',
    os: parseOsRelease(OS_RELEASE),
    packages,
    artifacts: [{ uri: 'probe.tar.zst', format: 'tar.zst', sha256: 'ab'.repeat(32), size: 1234 }],
    tool: { name: 'bareon', version: '0.1.0' },
  };
}

/** A tar stream of `entries` (paths under doc/), as Docker's archive API gives /usr/share/doc. */
function docTar(entries: { name: string; content?: string; link?: string }[]): Readable {
  const p = pack();
  for (const e of entries)
    if (e.link !== undefined) p.entry({ name: e.name, type: 'symlink', linkname: e.link });
    else if (e.content === undefined) p.entry({ name: e.name, type: 'directory' });
    else p.entry({ name: e.name }, e.content);
  p.finalize();
  return p as unknown as Readable;
}

describe('the image package database', () => {
  it('lists installed dpkg packages with their source packages, sorted; others are left out', () => {
    expect(parseDpkgPackages(STATUS)).toEqual([
      { name: 'bash', version: '5.2.15-2+b7', arch: 'amd64', source: 'bash', sourceVersion: '5.2.15-2', licenses: [] },
      { name: 'ca-certificates', version: '20230311', arch: 'all', source: 'ca-certificates', licenses: [] },
      { name: 'libc6', version: '2.36-9+deb12u10', arch: 'amd64', source: 'glibc', licenses: [] },
    ]);
  });

  it('reads licenses from machine-readable copyright files only', () => {
    expect(dep5Licenses(DEP5)).toEqual(['GPL-3+', 'GPL-3+ or BSD-3-clause', 'MIT']);
    expect(dep5Licenses('This is Debian’s prepackaged version of foo.\n\nLicense: GPL\n')).toBeUndefined();
    expect(parseOsRelease(OS_RELEASE)).toEqual({
      id: 'debian',
      versionId: '12',
      prettyName: 'Debian GNU/Linux 12 (bookworm)',
    });
  });

  it('follows doc symlinks inside /usr/share/doc, never out of it', async () => {
    const licenses = await docArchiveLicenses(
      docTar([
        { name: 'doc/' },
        { name: 'doc/bash/' },
        { name: 'doc/bash/copyright', content: DEP5 },
        { name: 'doc/bash-builtins', link: 'bash' },
        { name: 'doc/libfoo/' },
        { name: 'doc/libfoo/copyright', link: '../bash/copyright' },
        { name: 'doc/freeform/' },
        { name: 'doc/freeform/copyright', content: 'Copyright 1999 someone. GPL.\n' },
        { name: 'doc/escape', link: '/usr/share/doc/bash' },
        { name: 'doc/up/' },
        { name: 'doc/up/copyright', link: '../../../etc/shadow' },
      ]),
      ['bash', 'bash-builtins', 'libfoo', 'freeform', 'escape', 'up', 'missing'],
    );
    const mit = ['GPL-3+', 'GPL-3+ or BSD-3-clause', 'MIT'];
    expect(Object.fromEntries(licenses)).toEqual({ bash: mit, 'bash-builtins': mit, libfoo: mit });
  });
});

describe('the CycloneDX SBOM', () => {
  it('is a CycloneDX 1.6 document the strict JSON validator accepts, with packages, purls, licenses and artifacts', async () => {
    const json = await cycloneDxSbom(fixture());
    expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json)).toBeNull();
    const doc = JSON.parse(json);
    expect(doc).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1 });
    expect(doc.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(doc.metadata.timestamp).toBe('2026-01-01T00:00:00.000Z');
    expect(doc.metadata.component).toMatchObject({ type: 'operating-system', name: 'probe' });
    expect(doc.metadata.tools.components[0]).toMatchObject({ name: 'bareon', version: '0.1.0' });
    const bash = doc.components.find((c: { name: string }) => c.name === 'bash');
    expect(bash).toMatchObject({
      type: 'library',
      version: '5.2.15-2+b7',
      purl: 'pkg:deb/debian/bash@5.2.15-2+b7?arch=amd64&distro=debian-12',
      properties: [
        { name: 'bareon:package:source', value: 'bash' },
        { name: 'bareon:package:source_version', value: '5.2.15-2' },
      ],
    });
    // an SPDX identifier where Debian's short name is one, the name as Debian wrote it otherwise
    expect(bash.licenses).toEqual([
      { license: { name: 'GPL-3+', acknowledgement: 'declared' } },
      { license: { name: 'GPL-3+ or BSD-3-clause', acknowledgement: 'declared' } },
      { license: { id: 'MIT', acknowledgement: 'declared' } },
    ]);
    expect(doc.components.find((c: { name: string }) => c.name === 'libc6').properties).toEqual([
      { name: 'bareon:package:source', value: 'glibc' },
    ]);
    expect(doc.components.find((c: { name: string }) => c.name === 'debian')).toMatchObject({
      type: 'operating-system',
      version: '12',
    });
    expect(doc.components.find((c: { type: string }) => c.type === 'file')).toMatchObject({
      name: 'probe.tar.zst',
      hashes: [{ alg: 'SHA-256', content: 'ab'.repeat(32) }],
    });
    expect(sbomComponents(json)).toEqual({
      packages: [
        { name: 'bash', version: '5.2.15-2+b7', arch: 'amd64' },
        { name: 'ca-certificates', version: '20230311', arch: 'all' },
        { name: 'libc6', version: '2.36-9+deb12u10', arch: 'amd64' },
      ],
      files: [{ name: 'probe.tar.zst', format: 'tar.zst', sha256: 'ab'.repeat(32) }],
    });
  });

  it('is byte-identical for the same inputs, whatever their order; its serial number follows its content', async () => {
    const a = await cycloneDxSbom(fixture());
    const shuffled = fixture();
    shuffled.packages.reverse();
    expect(await cycloneDxSbom(shuffled)).toBe(a);
    const later = await cycloneDxSbom({ ...fixture(), epoch: EPOCH + 1 });
    expect(later).not.toBe(a);
    expect(JSON.parse(later).serialNumber).not.toBe(JSON.parse(a).serialNumber);
  });

  it('bareon diff compares two SBOMs: packages added, removed and changed, and the artifacts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'bareon-sbom-'));
    const b = fixture();
    b.packages = b.packages.filter((p) => p.name !== 'ca-certificates');
    b.packages.find((p) => p.name === 'libc6')!.version = '2.36-9+deb12u11';
    b.packages.push({ name: 'less', version: '590-2.1~deb12u2', arch: 'amd64', licenses: [] });
    b.artifacts = [{ ...b.artifacts[0], sha256: 'cd'.repeat(32) }];
    const [fa, fb] = [path.join(dir, 'a.cdx.json'), path.join(dir, 'b.cdx.json')];
    await writeFile(fa, await cycloneDxSbom(fixture()));
    await writeFile(fb, await cycloneDxSbom(b));
    const r = await bareon('bareon', ['diff', fa, fb]);
    expect(r.exitCode, String(r.all)).toBe(1);
    expect(r.stdout).toContain('packages: 1 added, 1 removed, 1 changed (of 3 and 3)');
    expect(r.stdout).toContain('  + less 590-2.1~deb12u2 (amd64)');
    expect(r.stdout).toContain('  - ca-certificates 20230311 (all)');
    expect(r.stdout).toContain('  ~ libc6 2.36-9+deb12u10 → 2.36-9+deb12u11');
    expect(r.stdout).toContain(`  ~ tar.zst sha256 ${'ab'.repeat(6)} → ${'cd'.repeat(6)}`);
    expect(r.stdout).toContain('SBOMs differ');
    const same = await bareon('bareon', ['diff', fa, fa]);
    expect(same.exitCode, String(same.all)).toBe(0);
    expect(same.stdout).toContain('identical: ');
    // another timestamp, the same packages and artifacts
    const fc = path.join(dir, 'c.cdx.json');
    await writeFile(fc, await cycloneDxSbom({ ...fixture(), epoch: EPOCH + 60 }));
    const later = await bareon('bareon', ['diff', fa, fc]);
    expect(later.exitCode, String(later.all)).toBe(0);
    expect(later.stdout).toContain('packages: 0 added, 0 removed, 0 changed (of 3 and 3)');
    expect(later.stdout).toContain('SBOMs: same packages and artifacts');
  });
});
