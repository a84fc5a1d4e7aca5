import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';

/**
 * SSH signatures as `ssh-keygen -Y sign` writes them (OpenSSH's PROTOCOL.sshsig), checked against an
 * allowed-signers file as `ssh-keygen -Y verify` reads it. Keys: ssh-ed25519, ssh-rsa (signatures
 * rsa-sha2-256/512) and ecdsa-sha2-nistp256/384/521. Certificates and security-key (sk-) keys are
 * refused by name rather than mis-verified.
 */

/** Why a signature is not accepted: the caller adds the file and the fix. */
export class SignatureError extends Error {}

const MAGIC = Buffer.from('SSHSIG');
const ARMOR = /-----BEGIN SSH SIGNATURE-----([\s\S]*?)-----END SSH SIGNATURE-----/;

/** Reads SSH wire-format fields (uint32-length strings) from a buffer, refusing to run past its end. */
class WireReader {
  private at = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}
  uint32(): number {
    if (this.at + 4 > this.buf.length) throw new SignatureError(`${this.what}: truncated`);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  bytes(): Buffer {
    const n = this.uint32();
    if (this.at + n > this.buf.length) throw new SignatureError(`${this.what}: truncated`);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  text(): string {
    return this.bytes().toString('latin1');
  }
  raw(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new SignatureError(`${this.what}: truncated`);
    const v = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return v;
  }
  done(): boolean {
    return this.at === this.buf.length;
  }
}

function wireString(value: Buffer | string): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value) : value;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** A signature file's parts. */
export interface SshSignature {
  /** The signer's public key in SSH wire format. */
  publicKey: Buffer;
  keyType: string;
  namespace: string;
  hashAlgorithm: 'sha256' | 'sha512';
  /** The signature's algorithm (ssh-ed25519, rsa-sha2-512…) and bytes. */
  algorithm: string;
  signature: Buffer;
}

/** Parses an armored SSH signature (the text `ssh-keygen -Y sign` writes). */
export function parseSshSignature(text: string): SshSignature {
  const m = ARMOR.exec(text);
  if (!m) throw new SignatureError('not an SSH signature (no BEGIN/END SSH SIGNATURE armor)');
  const blob = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  const r = new WireReader(blob, 'SSH signature');
  if (!r.raw(MAGIC.length).equals(MAGIC)) throw new SignatureError('not an SSH signature (no SSHSIG magic)');
  const version = r.uint32();
  if (version !== 1) throw new SignatureError(`SSH signature version ${version}; bareon reads version 1`);
  const publicKey = r.bytes();
  const namespace = r.text();
  r.bytes(); // reserved
  const hash = r.text();
  if (hash !== 'sha256' && hash !== 'sha512')
    throw new SignatureError(`SSH signature hash "${hash}" is not sha256 or sha512`);
  const sig = new WireReader(r.bytes(), 'SSH signature');
  if (!r.done()) throw new SignatureError('SSH signature: trailing bytes');
  const algorithm = sig.text();
  const signature = sig.bytes();
  const keyType = new WireReader(publicKey, 'SSH signature key').text();
  return { publicKey, keyType, namespace, hashAlgorithm: hash, algorithm, signature };
}

const CURVES: Record<string, { crv: string; hash: string; size: number }> = {
  nistp256: { crv: 'P-256', hash: 'sha256', size: 32 },
  nistp384: { crv: 'P-384', hash: 'sha384', size: 48 },
  nistp521: { crv: 'P-521', hash: 'sha512', size: 66 },
};

const b64url = (b: Buffer) => b.toString('base64url');
/** An SSH mpint as unsigned big-endian bytes (no sign byte). */
const unsigned = (b: Buffer) => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
};

/** A public key in SSH wire format as a KeyObject, with the hash its signatures use. */
function publicKeyObject(blob: Buffer): { key: KeyObject; type: string; curve?: (typeof CURVES)[string] } {
  const r = new WireReader(blob, 'SSH public key');
  const type = r.text();
  if (type === 'ssh-ed25519') {
    const x = r.bytes();
    return { type, key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(x) }, format: 'jwk' }) };
  }
  if (type === 'ssh-rsa') {
    const e = unsigned(r.bytes());
    const n = unsigned(r.bytes());
    return { type, key: createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(e) }, format: 'jwk' }) };
  }
  const ec = /^ecdsa-sha2-(nistp\d+)$/.exec(type);
  if (ec && CURVES[ec[1]]) {
    const curve = CURVES[ec[1]];
    r.text();
    const q = r.bytes();
    if (q[0] !== 4 || q.length !== 1 + 2 * curve.size)
      throw new SignatureError(`${type} key: not an uncompressed point`);
    const jwk = {
      kty: 'EC',
      crv: curve.crv,
      x: b64url(q.subarray(1, 1 + curve.size)),
      y: b64url(q.subarray(1 + curve.size)),
    };
    return { type, curve, key: createPublicKey({ key: jwk, format: 'jwk' }) };
  }
  if (type.includes('-cert-v01@openssh.com'))
    throw new SignatureError(`${type}: signatures by certificates are not supported; sign with the plain key`);
  if (type.startsWith('sk-')) throw new SignatureError(`${type}: security-key signatures are not supported`);
  throw new SignatureError(`key type ${type} is not supported (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp*)`);
}

/** The bytes an SSH signature signs: the magic, namespace and the message's hash. */
function signedData(sig: SshSignature, message: Buffer): Buffer {
  const digest = createHash(sig.hashAlgorithm).update(message).digest();
  return Buffer.concat([
    MAGIC,
    wireString(sig.namespace),
    wireString(''),
    wireString(sig.hashAlgorithm),
    wireString(digest),
  ]);
}

/** Whether `sig` is a valid signature of `message` by its own key (who that key is, the caller checks). */
export function signatureMatches(sig: SshSignature, message: Buffer): boolean {
  const { key, type, curve } = publicKeyObject(sig.publicKey);
  const data = signedData(sig, message);
  if (type === 'ssh-ed25519') return sig.algorithm === 'ssh-ed25519' && verify(null, data, key, sig.signature);
  if (type === 'ssh-rsa') {
    const hash = { 'rsa-sha2-256': 'sha256', 'rsa-sha2-512': 'sha512' }[sig.algorithm];
    if (!hash)
      throw new SignatureError(
        `RSA signature algorithm ${sig.algorithm}: only rsa-sha2-256 and rsa-sha2-512 are accepted`,
      );
    return verify(hash, data, key, sig.signature);
  }
  if (!curve || sig.algorithm !== type) return false;
  const r = new WireReader(sig.signature, 'ECDSA signature');
  const pad = (b: Buffer) => {
    const u = unsigned(b);
    if (u.length > curve.size) throw new SignatureError('ECDSA signature: value too long');
    return Buffer.concat([Buffer.alloc(curve.size - u.length), u]);
  };
  const rs = Buffer.concat([pad(r.bytes()), pad(r.bytes())]);
  return verify(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' }, rs);
}

/** One line of an allowed-signers file. */
export interface AllowedSigner {
  principals: string[];
  namespaces?: string[];
  validAfter?: Date;
  validBefore?: Date;
  certAuthority: boolean;
  keyType: string;
  publicKey: Buffer;
  /** 1-based line number in its file. */
  line: number;
}

/** Splits an allowed-signers line into fields; quoted option values keep their spaces and commas. */
function fields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && /\s/.test(ch)) {
      if (cur) out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw new SignatureError('unterminated quote');
  if (cur) out.push(cur);
  return out;
}

/** YYYYMMDD[HHMM[SS]][Z] as OpenSSH writes validity times (local time unless Z). */
function sshTime(value: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z)?$/.exec(value);
  if (!m) throw new SignatureError(`time "${value}" is not YYYYMMDD[HHMM[SS]][Z]`);
  const parts = [
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4] ?? 0),
    Number(m[5] ?? 0),
    Number(m[6] ?? 0),
  ] as const;
  return m[7] ? new Date(Date.UTC(...parts)) : new Date(...parts);
}

const KEY_TYPE = /^(ssh-|ecdsa-|sk-)/;

/** Parses an allowed-signers file (the format of `ssh-keygen -Y verify -f`); errors name the line. */
export function parseAllowedSigners(text: string): AllowedSigner[] {
  const signers: AllowedSigner[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    try {
      const f = fields(line);
      const keyAt = f.findIndex((x, j) => j > 0 && KEY_TYPE.test(x));
      if (keyAt < 1 || keyAt + 1 >= f.length)
        throw new SignatureError('expected: PRINCIPALS [OPTIONS] KEYTYPE BASE64-KEY');
      const signer: AllowedSigner = {
        principals: f[0].split(','),
        certAuthority: false,
        keyType: f[keyAt],
        publicKey: Buffer.from(f[keyAt + 1], 'base64'),
        line: i + 1,
      };
      for (const opt of f.slice(1, keyAt).flatMap((o) => o.match(/(?:[^,"]|"[^"]*")+/g) ?? [])) {
        const [name, ...rest] = opt.split('=');
        const value = rest.join('=').replace(/^"|"$/g, '');
        const lower = name.toLowerCase();
        if (lower === 'cert-authority') signer.certAuthority = true;
        else if (lower === 'namespaces') signer.namespaces = value.split(',');
        else if (lower === 'valid-after') signer.validAfter = sshTime(value);
        else if (lower === 'valid-before') signer.validBefore = sshTime(value);
        else throw new SignatureError(`unknown option "${name}"`);
      }
      if (new WireReader(signer.publicKey, 'key').text() !== signer.keyType)
        throw new SignatureError(`the key is not of type ${signer.keyType}`);
      signers.push(signer);
    } catch (err) {
      if (err instanceof SignatureError) throw new SignatureError(`line ${i + 1}: ${err.message}`);
      throw err;
    }
  });
  return signers;
}

/** OpenSSH pattern matching: `*` and `?` wildcards, `!` negation, comma-separated lists. */
function matchesList(value: string, patterns: string[]): boolean {
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    const re = new RegExp(
      `^${(negated ? p.slice(1) : p)
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    if (re.test(value)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The SHA256 fingerprint of a public key, as ssh-keygen prints it. */
export function keyFingerprint(publicKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '')}`;
}

/** Who signed, when a signature is accepted. */
export interface TrustedSignature {
  principal: string;
  keyType: string;
  fingerprint: string;
  line: number;
}

/**
 * Accepts `signatureText` over `message` only if it is valid, in `namespace`, and made by a key that
 * an allowed signer lists for that namespace at time `now`; otherwise throws a SignatureError saying
 * which of these failed.
 */
export function verifySshSignature(
  message: Buffer,
  signatureText: string,
  signers: AllowedSigner[],
  namespace: string,
  now = new Date(),
): TrustedSignature {
  const sig = parseSshSignature(signatureText);
  const fingerprint = keyFingerprint(sig.publicKey);
  if (sig.namespace !== namespace)
    throw new SignatureError(`signed for namespace "${sig.namespace}", not "${namespace}"`);
  const listed = signers.filter((s) => !s.certAuthority && s.publicKey.equals(sig.publicKey));
  if (!listed.length)
    throw new SignatureError(`signed by ${sig.keyType} key ${fingerprint}, which no allowed signer lists`);
  const usable = listed.filter(
    (s) =>
      (!s.namespaces || matchesList(namespace, s.namespaces)) &&
      (!s.validAfter || now >= s.validAfter) &&
      (!s.validBefore || now < s.validBefore),
  );
  if (!usable.length)
    throw new SignatureError(
      `key ${fingerprint} is listed (line ${listed[0].line}), but not for namespace "${namespace}" at ${now.toISOString()}`,
    );
  if (!signatureMatches(sig, message))
    throw new SignatureError(
      `the signature by key ${fingerprint} does not match the content: it changed after signing`,
    );
  return { principal: usable[0].principals[0], keyType: sig.keyType, fingerprint, line: usable[0].line };
}
