import { BareonError } from '../core/errors.js';
import type { DeploySource } from '../objects/deploy.js';

/** The source's bytes do not hash to what the manifest or --checksum says. */
export class ChecksumMismatchError extends BareonError {}

/** Throws unless the stored bytes hashed to the expected sha256 (when verifying) and had the expected length. */
export function checkSourceDigest(source: DeploySource, verify: boolean, got: { sha256: string; size: number }): void {
  if (source.size !== undefined && got.size !== source.size) {
    throw new BareonError(`source ${source.uri}: truncated: read ${got.size} bytes, expected ${source.size}`, {
      hint: 'the source ended early; nothing bootable was left on the target',
    });
  }
  if (verify && source.sha256 && got.sha256 !== source.sha256) {
    throw new ChecksumMismatchError(
      `source ${source.uri}: checksum mismatch: sha256 ${got.sha256}, expected ${source.sha256}`,
      {
        hint: 'the image is corrupt or not the one the manifest names; the target was not left bootable',
      },
    );
  }
}

/** The digest a source is checked against (undefined: none). */
export function expectedDigest(source: DeploySource): { algorithm: 'sha256' | 'sha512'; hex: string } | undefined {
  if (source.sha512) return { algorithm: 'sha512', hex: source.sha512 };
  return source.sha256 ? { algorithm: 'sha256', hex: source.sha256 } : undefined;
}
