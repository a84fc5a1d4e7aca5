import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { ValidationError } from '../core/errors.js';
import type { Artifact, Manifest } from '../objects/artifact.js';
import type { DeploySource, SourceClaim, SourceContent, SourceProbe } from '../objects/deploy.js';
import { decompressHead } from './decompress.js';
import { detectCompression, detectContent, ext4Size, parseQcow2Header } from './magic.js';
import { HEAD_FRAME_MAX, zstdContentSize, zstdHeadFrame } from './zstd-frames.js';
import { isUrl, openStored, peek, readAtMost } from './open.js';
import { listedBmap } from './bmap-artifact.js';
import { sha512Check } from './digest-check.js';
import { type Trust, verifyManifest } from './manifest-trust.js';
import type { TrustedSignature } from '../core/ssh-signature.js';

// enough compressed bytes for a zstd/xz block of incompressible data to come out whole (blocks are up to 128 KiB)
const HEAD = 1024 * 1024;

/** Formats bareon-deploy takes, as content plus compression suffix. */
export const SOURCE_FORMATS = [
  'qcow2',
  'raw',
  'raw.gz',
  'raw.xz',
  'raw.zst',
  'tar',
  'tar.gz',
  'tar.xz',
  'tar.zst',
  'ext4',
  'ext4.gz',
  'ext4.xz',
  'ext4.zst',
] as const;

/** A whole-disk image first, then tarballs, then filesystem images: what deploy prefers from a manifest. */
const PREFERENCE = [
  'qcow2',
  'raw.zst',
  'raw.xz',
  'raw.gz',
  'raw',
  'tar.zst',
  'tar.gz',
  'tar.xz',
  'tar',
  'ext4.zst',
  'ext4.gz',
  'ext4.xz',
  'ext4',
];

const CONTENT: Record<string, { name: string; content: SourceContent }> = {
  disk: { name: 'raw', content: 'disk' },
  tar: { name: 'tar', content: 'rootfs' },
  ext4: { name: 'ext4', content: 'fs' },
};

export interface SourceRequest {
  /** --format: what the user says the source is. */
  format?: string;
  /** --checksum sha256:HEX */
  sha256?: string;
  /** --checksum sha512:HEX */
  sha512?: string;
  signal?: AbortSignal;
  /** The manifest that named this source: an artifact is never a manifest itself. */
  fromManifest?: string;
  /** Asks the installed deployers about bytes bareon does not recognise. */
  claim?: (probe: SourceProbe) => Promise<(SourceClaim & { deployer: string }) | undefined>;
  /** --trust: the source must be a manifest signed by one of these keys. */
  trust?: Trust;
}

/** The largest manifest bareon reads: thousands of artifacts and packages fit in far less. */
const MANIFEST_MAX = 16 * 1024 * 1024;

/** A manifest's bytes, refused past MANIFEST_MAX. */
const manifestBytes = (stream: Readable, uri: string) =>
  readAtMost(
    stream,
    MANIFEST_MAX,
    () =>
      new ValidationError(
        `manifest ${uri}: larger than ${MANIFEST_MAX / 2 ** 20} MiB; bareon reads no manifest that large`,
      ),
  );

function parseJson(text: string, uri: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`manifest ${uri}: not valid JSON (${(err as Error).message})`, {
      hint: 'give a <name>.manifest.json as bareon-build wrote it',
    });
  }
}

/** Reads the head of a local file without a stream. */
async function fileHead(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(HEAD);
    const { bytesRead } = await fh.read(head, 0, HEAD, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The manifest's best artifact for a deploy, with its uri resolved against the manifest's location. */
export function pickArtifact(manifest: Manifest, manifestUri: string): Artifact & { resolved: string } {
  const ranked = [...manifest.artifacts].sort((a, b) => rank(a.format) - rank(b.format));
  const best = ranked.find((a) => rank(a.format) < PREFERENCE.length);
  if (!best)
    throw new ValidationError(
      `manifest ${manifestUri}: no deployable artifact (formats: ${manifest.artifacts.map((a) => a.format).join(', ') || 'none'})`,
    );
  return { ...best, resolved: artifactLocation(best.uri, manifestUri) };
}

/**
 * Where an artifact of a manifest is: a remote manifest's uris resolve against its own URL only (an
 * absolute path is a path on its server), so a downloaded manifest can never name this machine's
 * files; a local manifest's relative uris resolve against its directory.
 */
export function artifactLocation(uri: string, manifestUri: string): string {
  if (!isUrl(manifestUri)) return isUrl(uri) || path.isAbsolute(uri) ? uri : path.join(path.dirname(manifestUri), uri);
  let url: URL | undefined;
  try {
    url = new URL(uri, manifestUri);
  } catch {
    url = undefined;
  }
  if (!url || !isUrl(url.href)) {
    throw new ValidationError(
      `manifest ${manifestUri}: artifact uri "${uri}" is not an http(s) URL or a path on the manifest's server`,
      {
        hint: 'a remote manifest names its artifacts relative to its own URL; nothing was written',
      },
    );
  }
  return url.href;
}
const rank = (format: string) => {
  const i = PREFERENCE.indexOf(format);
  return i < 0 ? PREFERENCE.length : i;
};

/**
 * Opens a deploy source far enough to know it: the format from magic bytes (never the name), the
 * expected checksum (from --checksum or the manifest), sizes. A manifest is followed to its best
 * artifact. A format that contradicts --format or the manifest is a ValidationError.
 */
export async function resolveSource(
  uri: string,
  req: SourceRequest = {},
): Promise<DeploySource & { manifest?: Manifest; signedBy?: TrustedSignature }> {
  const local = uri !== '-' && !isUrl(uri);
  let head: Buffer;
  let size: number | undefined;
  let stdin: Readable | undefined;
  if (local) {
    const st = await stat(uri).catch(() => undefined);
    if (!st?.isFile())
      throw new ValidationError(`source ${uri}: ${st ? 'not a regular file' : 'no such file'}`, {
        hint: 'give a disk image, a rootfs tarball, a filesystem image or a <name>.manifest.json written by bareon-build',
      });
    head = await fileHead(uri);
    size = st.size;
  } else {
    const { stream, size: length } = await openStored(uri, req.signal);
    const peeked = await peek(stream, HEAD);
    head = peeked.head;
    size = length;
    if (uri === '-') stdin = peeked.rest;
    else stream.destroy();
  }
  const compression = detectCompression(head);
  const inner = compression ? await decompressHead(compression, head) : head;
  const magic = detectContent(inner);

  if (magic === 'manifest' && !compression) {
    if (req.fromManifest)
      throw new ValidationError(`manifest ${req.fromManifest} names ${uri}, another manifest, as its artifact`, {
        hint: 'a manifest lists images and tarballs, not manifests',
      });
    const bytes = await manifestBytes(
      local ? createReadStream(uri) : (stdin ?? (await openStored(uri, req.signal)).stream),
      uri,
    );
    if (uri === '-' && req.trust)
      throw new ValidationError('--trust: a manifest read from stdin has no signature beside it', {
        hint: 'give the manifest as a path or URL, with its .sig beside it',
      });
    // the signature is checked on the bytes as read, before they are parsed
    const signedBy = req.trust && (await verifyManifest(bytes, uri, req.trust, req.signal));
    const text = bytes.toString('utf8');
    // the manifest's schema (zod) loads for a manifest only
    const [{ ManifestSchema }, { parseWith }] = await Promise.all([
      import('../objects/artifact.js'),
      import('../objects/yaml-source.js'),
    ]);
    const manifest = parseWith(ManifestSchema, parseJson(text, uri), { label: uri });
    if (uri === '-')
      throw new ValidationError('a manifest read from stdin cannot name its artifacts', {
        hint: 'give the manifest as a path or URL',
      });
    const artifact = pickArtifact(manifest, uri);
    const source = await resolveSource(artifact.resolved, {
      ...req,
      format: req.format ?? artifact.format,
      sha256: req.sha256 ?? artifact.sha256,
      sha512: req.sha512,
      fromManifest: uri,
    }).catch((err: unknown) => {
      if (err instanceof ValidationError)
        throw new ValidationError(`manifest ${uri}: ${err.message}`, { hint: err.hint });
      throw err;
    });
    if (source.size !== undefined && source.size !== artifact.size) {
      throw new ValidationError(
        `${artifact.resolved}: ${source.size} bytes, but manifest ${uri} records ${artifact.size}`,
        { hint: 'the artifact changed after the build; rebuild or use the matching manifest' },
      );
    }
    return {
      ...source,
      size: artifact.size,
      virtualSize: source.virtualSize ?? artifact.virtual_size,
      manifest,
      signedBy,
      bmap: listedBmap(manifest, artifact, uri, (u) => artifactLocation(u, uri)),
    };
  }
  if (req.trust && !req.fromManifest)
    throw new ValidationError(
      `--trust: ${uri} is ${compression ? `${compression}-compressed ` : ''}${magic === 'unknown' ? 'not a manifest' : `a ${magic}, not a manifest`}; only a signed manifest can be trusted`,
      { hint: 'deploy the <name>.manifest.json (with its .sig) that lists this artifact; nothing was written' },
    );

  let format: string;
  let content: SourceContent;
  let virtualSize: number | undefined;
  let headFrame: DeploySource['headFrame'];
  let deployer: string | undefined;
  const claimed =
    magic === 'unknown' && !(req.format?.startsWith('raw') && !compression)
      ? await req.claim?.({ uri, head, size })
      : undefined;
  if (claimed) {
    ({ format, content, virtualSize, deployer } = claimed);
  } else if (magic === 'qcow2') {
    if (compression)
      throw new ValidationError(`source ${uri}: a ${compression}-compressed qcow2`, {
        hint: 'decompress it first; qcow2 has its own compression',
      });
    format = 'qcow2';
    content = 'disk';
    virtualSize = parseQcow2Header(head).virtualSize;
  } else {
    const known = CONTENT[magic] ?? (req.format?.startsWith('raw') ? CONTENT.disk : undefined);
    if (!known) {
      throw new ValidationError(
        `source ${uri}: not a format bareon-deploy knows (no qcow2, tar, ext4 or partition table signature${compression ? ` inside the ${compression} stream` : ''})`,
        {
          hint: `formats: ${SOURCE_FORMATS.join(', ')}; --format raw writes an unpartitioned image as it is`,
        },
      );
    }
    format = compression ? `${known.name}.${compression}` : known.name;
    content = known.content;
    if (content === 'fs') virtualSize = ext4Size(inner);
    else if (content === 'disk' && compression === 'zst') {
      const frame = zstdHeadFrame(head);
      const frameSize =
        frame &&
        (frame.contentSize ?? (await decompressHead('zst', head.subarray(0, frame.length), HEAD_FRAME_MAX + 1)).length);
      if (frame && frameSize && frameSize <= HEAD_FRAME_MAX) {
        headFrame = { length: frame.length, size: frameSize };
        const rest = zstdContentSize(head.subarray(frame.length));
        virtualSize = rest === undefined ? undefined : frameSize + rest;
      } else virtualSize = zstdContentSize(head);
    } else if (content === 'disk') virtualSize = compression ? undefined : size;
  }
  if (req.format && req.format !== format) {
    throw new ValidationError(`source ${uri}: its bytes say ${format}, but ${req.format} was expected`, {
      hint: 'the format comes from the content; check the file, or drop --format',
    });
  }
  if (req.sha256 && !/^[0-9a-f]{64}$/.test(req.sha256))
    throw new ValidationError(`--checksum: expected sha256:<64 hex digits>, got "${req.sha256}"`);
  if (req.sha512 && !/^[0-9a-f]{128}$/.test(req.sha512))
    throw new ValidationError(`--checksum: expected sha512:<128 hex digits>, got "${req.sha512}"`);
  const { sha512 } = req;
  const checks: ReturnType<typeof sha512Check>[] = [];
  let opened = false;
  const openBytes = async (signal?: AbortSignal): Promise<Readable> => {
    if (stdin) {
      if (opened) throw new ValidationError('stdin can be read only once');
      opened = true;
      return stdin;
    }
    return (await openStored(uri, signal)).stream;
  };
  return {
    uri,
    format,
    content,
    sha256: req.sha256,
    sha512,
    ...(sha512 ? { sha512Checked: () => checks.some((c) => c.checked()) } : {}),
    size,
    virtualSize,
    headFrame,
    // a sha512 is checked on the stream: no deployer reads the file by position, past that check
    file: local && !sha512 ? path.resolve(uri) : undefined,
    ...(sha512 ? { bmap: false as const } : {}),
    head: claimed ? head : inner,
    compression: claimed ? undefined : compression,
    deployer,
    async open(signal) {
      const bytes = await openBytes(signal);
      if (!sha512) return bytes;
      const check = sha512Check(sha512, uri);
      checks.push(check);
      // pipeline, not pipe: a read error of the source reaches whoever reads the checked stream
      return pipeline(bytes, check, () => {});
    },
  };
}
