import { createHash } from 'node:crypto';
import { BareonError } from '../core/errors.js';
import { lazyPackage } from '../core/lazy-package.js';
import type { Artifact } from '../objects/artifact.js';
import type { ImagePackage, OsRelease } from './image-packages.js';

/** The CycloneDX library (and, when validating, ajv) load when an SBOM is written, not with every command. */
const cdx = lazyPackage<typeof import('@cyclonedx/cyclonedx-library')>('@cyclonedx/cyclonedx-library');
const purl = lazyPackage<typeof import('packageurl-js')>('packageurl-js');

export const SBOM_FORMAT = 'cdx.json';
export const SBOM_SPEC_VERSION = '1.6';

export interface SbomInput {
  /** The profile's name: the image the document describes. */
  name: string;
  /** The build's fixed time; the document's timestamp (now when unset). */
  epoch?: number;
  /** The package manager whose database listed the packages: names the purl type. */
  manager?: 'dpkg' | 'apk';
  os?: OsRelease;
  packages: ImagePackage[];
  /** The build's other artifacts, each listed as a file with its sha256. */
  artifacts: Artifact[];
  /** The tool that wrote the document. */
  tool: { name: string; version: string };
}

/** A package's purl: `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12` (apk: `pkg:apk/alpine/…`). */
export function packageUrl(p: ImagePackage, manager: 'dpkg' | 'apk' = 'dpkg', os?: OsRelease): string {
  const { PackageURL } = purl();
  const qualifiers: Record<string, string> = {};
  if (p.arch) qualifiers.arch = p.arch;
  if (os?.versionId) qualifiers.distro = `${os.id}-${os.versionId}`;
  return new PackageURL(
    manager === 'apk' ? 'apk' : 'deb',
    os?.id ?? (manager === 'apk' ? 'alpine' : 'debian'),
    p.name,
    p.version || undefined,
    qualifiers,
    undefined,
  ).toString();
}

/** A name-based UUID (version 5, the URL namespace) of `name`: the same document gets the same serial number. */
function uuidV5(name: string): string {
  const ns = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex');
  const h = createHash('sha1').update(ns).update(name).digest().subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * A CycloneDX 1.6 JSON document of an image: one library component per installed package (purl,
 * source package, declared licenses), the distribution as an operating-system component, and one
 * file component per artifact with its sha256. Lists are sorted, the timestamp is the epoch's and
 * the serial number is derived from the content, so the same inputs give the same bytes. The
 * document is checked by the library's strict JSON schema validator before it is returned.
 */
export async function cycloneDxSbom(input: SbomInput): Promise<string> {
  const { Models, Enums, Spec, Serialize, SPDX } = cdx();
  const bom = new Models.Bom();
  bom.metadata.timestamp = new Date(input.epoch === undefined ? Date.now() : input.epoch * 1000);
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, input.tool.name, {
      version: input.tool.version,
      bomRef: `tool:${input.tool.name}`,
    }),
  );
  bom.metadata.component = new Models.Component(Enums.ComponentType.OperatingSystem, input.name, {
    bomRef: `image:${input.name}`,
    ...(input.os?.prettyName ? { description: input.os.prettyName } : {}),
  });
  if (input.os)
    bom.components.add(
      new Models.Component(Enums.ComponentType.OperatingSystem, input.os.id, {
        bomRef: `os:${input.os.id}${input.os.versionId ? `@${input.os.versionId}` : ''}`,
        ...(input.os.versionId ? { version: input.os.versionId } : {}),
        ...(input.os.prettyName ? { description: input.os.prettyName } : {}),
      }),
    );
  for (const p of input.packages) {
    const url = packageUrl(p, input.manager, input.os);
    const c = new Models.Component(Enums.ComponentType.Library, p.name, {
      bomRef: url,
      purl: url,
      ...(p.version ? { version: p.version } : {}),
    });
    for (const name of p.licenses) {
      const id = SPDX.fixupSpdxId(name);
      const license = id ? new Models.SpdxLicense(id) : new Models.NamedLicense(name);
      license.acknowledgement = Enums.LicenseAcknowledgement.Declared;
      c.licenses.add(license);
    }
    if (p.source) c.properties.add(new Models.Property('bareon:package:source', p.source));
    if (p.sourceVersion) c.properties.add(new Models.Property('bareon:package:source_version', p.sourceVersion));
    bom.components.add(c);
  }
  for (const a of input.artifacts) {
    const c = new Models.Component(Enums.ComponentType.File, a.uri, { bomRef: `artifact:${a.uri}` });
    c.hashes.set(Enums.HashAlgorithm['SHA-256'], a.sha256);
    c.properties.add(new Models.Property('bareon:artifact:format', a.format));
    c.properties.add(new Models.Property('bareon:artifact:size', String(a.size)));
    bom.components.add(c);
  }
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  const unnumbered = serializer.serialize(bom, { sortLists: true });
  bom.serialNumber = `urn:uuid:${uuidV5(`bareon:sbom:${createHash('sha256').update(unnumbered).digest('hex')}`)}`;
  const json = `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`;
  await validateSbom(json, `${input.name}.${SBOM_FORMAT}`);
  return json;
}

/** Checks a CycloneDX 1.6 JSON document with the library's strict schema validator; throws with its findings. */
export async function validateSbom(json: string, label = 'the SBOM'): Promise<void> {
  const { Spec, Validation } = cdx();
  const error = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json);
  if (error !== null)
    throw new BareonError(`${label}: not a valid CycloneDX ${SBOM_SPEC_VERSION} document`, {
      details: JSON.stringify(error, null, 2).slice(0, 4000),
    });
}

/** A package component of an SBOM, as `bareon diff` compares them. */
export interface SbomPackage {
  name: string;
  version: string;
  arch: string;
}

/** A file component of an SBOM (an artifact of the build). */
export interface SbomFile {
  name: string;
  format: string;
  sha256: string;
}

interface ComponentJson {
  type?: string;
  name?: string;
  version?: string;
  purl?: string;
  hashes?: { alg?: string; content?: string }[];
  properties?: { name?: string; value?: string }[];
}

/** Whether a JSON text is a CycloneDX document (from its first bytes). */
export function isCycloneDx(head: string): boolean {
  const text = head.trimStart();
  return text.startsWith('{') && /"bomFormat"\s*:\s*"CycloneDX"/.test(text);
}

/** The packages (components with a purl) and files of a CycloneDX JSON document, read without the library. */
export function sbomComponents(json: string, label = 'the SBOM'): { packages: SbomPackage[]; files: SbomFile[] } {
  let doc: { bomFormat?: unknown; components?: unknown };
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new BareonError(`${label}: not JSON: ${(err as Error).message}`);
  }
  if (doc?.bomFormat !== 'CycloneDX' || (doc.components !== undefined && !Array.isArray(doc.components)))
    throw new BareonError(`${label}: not a CycloneDX document`);
  const components = (doc.components ?? []) as ComponentJson[];
  const packages = components
    .filter((c) => typeof c?.purl === 'string' && typeof c.name === 'string')
    .map((c) => ({
      name: c.name!,
      version: String(c.version ?? ''),
      arch: new URLSearchParams(c.purl!.split('?')[1]?.split('#')[0] ?? '').get('arch') ?? '',
    }));
  const files = components
    .filter((c) => c?.type === 'file' && typeof c.name === 'string')
    .map((c) => ({
      name: c.name!,
      format: c.properties?.find((p) => p?.name === 'bareon:artifact:format')?.value ?? '',
      sha256: c.hashes?.find((h) => h?.alg === 'SHA-256')?.content ?? '',
    }));
  return { packages, files };
}
