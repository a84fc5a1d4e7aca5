import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ValidationError } from '../core/errors.js';
import {
  type AllowedSigner,
  parseAllowedSigners,
  SignatureError,
  type TrustedSignature,
  verifySshSignature,
} from '../core/ssh-signature.js';
import { isUrl, openStored, readAtMost } from './open.js';

/** The namespace of bareon's manifest signatures (`ssh-keygen -Y verify -n bareon-manifest`). */
export const MANIFEST_NAMESPACE = 'bareon-manifest';

/** The keys a deploy trusts: an allowed-signers file, parsed. */
export interface Trust {
  file: string;
  signers: AllowedSigner[];
}

/** Reads an allowed-signers file (`--trust`, a job's `trust:`, the agent's own); errors name the file and line. */
export async function loadTrust(file: string, what = '--trust'): Promise<Trust> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ValidationError(`${what}: cannot read ${file} (${err.code ?? err.message})`, {
      hint: 'give an allowed-signers file: one "PRINCIPAL [namespaces="bareon-manifest"] KEYTYPE BASE64-KEY" line per key',
    });
  });
  try {
    const signers = parseAllowedSigners(text);
    if (!signers.length) throw new SignatureError('no keys (every line is empty or a comment)');
    return { file, signers };
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    throw new ValidationError(`${what}: ${file}: ${err.message}`, {
      hint: 'the format is that of ssh-keygen -Y verify -f: PRINCIPAL [OPTIONS] KEYTYPE BASE64-KEY, as in a .pub file',
    });
  }
}

/** Where a manifest's signature is: beside it, with ".sig" appended (as `ssh-keygen -Y sign` writes it). */
export function signatureLocation(manifestUri: string): string {
  if (!isUrl(manifestUri)) return `${manifestUri}.sig`;
  const url = new URL(manifestUri);
  url.pathname += '.sig';
  return url.href;
}

/** A signature is a few hundred bytes (RSA 4096: under 2 KiB); a server sending more is not sending one. */
const SIGNATURE_MAX = 64 * 1024;

async function readSignature(location: string, signal?: AbortSignal): Promise<string | undefined> {
  if (!isUrl(location)) {
    return readFile(location, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw new ValidationError(`signature ${location}: cannot read it (${err.code ?? err.message})`);
    });
  }
  let stream: Readable;
  try {
    ({ stream } = await openStored(location, signal));
  } catch (err) {
    if (err instanceof ValidationError && / 404 /.test(err.message)) return undefined;
    throw err;
  }
  const bytes = await readAtMost(
    stream,
    SIGNATURE_MAX,
    () => new ValidationError(`signature ${location}: larger than ${SIGNATURE_MAX / 1024} KiB; not an SSH signature`),
  );
  return bytes.toString('latin1');
}

/**
 * Accepts the manifest `bytes` read from `uri` only when its signature beside it was made by a key
 * `trust` lists for bareon's namespace; otherwise a ValidationError (exit 2) says what is wrong:
 * unsigned, signed by another key, or altered. Runs before any artifact is opened.
 */
export async function verifyManifest(
  bytes: Buffer,
  uri: string,
  trust: Trust,
  signal?: AbortSignal,
): Promise<TrustedSignature> {
  const location = signatureLocation(uri);
  const text = await readSignature(location, signal);
  if (text === undefined)
    throw new ValidationError(`manifest ${uri}: unsigned (no ${location}); --trust accepts only signed manifests`, {
      hint: 'sign it where it was built (bareon-build --sign KEY, or ssh-keygen -Y sign -n bareon-manifest -f KEY), or deploy without --trust',
    });
  try {
    return verifySshSignature(bytes, text, trust.signers, MANIFEST_NAMESPACE);
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    throw new ValidationError(`manifest ${uri}: signature ${location} not accepted: ${err.message}`, {
      hint: `only keys listed in ${trust.file} are trusted; nothing was written`,
    });
  }
}
