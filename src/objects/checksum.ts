/** The digests a deploy source may be checked against: sha256 (bareon's manifests), sha512 (Glance's default). */
export type DigestAlgorithm = 'sha256' | 'sha512';

/** Hex digits of each algorithm's digest. */
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** What a checksum option asks for, or undefined when it is not ALGORITHM:HEX with the right length. */
export function parseChecksum(text: string): { algorithm: DigestAlgorithm; hex: string } | undefined {
  const m = /^(sha256|sha512):([0-9a-fA-F]+)$/.exec(text.trim());
  if (!m) return undefined;
  const algorithm = m[1] as DigestAlgorithm;
  return m[2].length === HEX_LENGTH[algorithm] ? { algorithm, hex: m[2].toLowerCase() } : undefined;
}
