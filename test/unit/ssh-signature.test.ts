import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signFile } from '../../src/build/manifest-signing.js';
import { parseAllowedSigners, SignatureError, verifySshSignature } from '../../src/core/ssh-signature.js';

/** Signatures made by ssh-keygen checked by bareon's reader, and bareon's checked by ssh-keygen. */
let dir: string;
const KEYS = [
  ['ed25519', ['-t', 'ed25519']],
  ['rsa', ['-t', 'rsa', '-b', '2048']],
  ['ecdsa256', ['-t', 'ecdsa', '-b', '256']],
  ['ecdsa384', ['-t', 'ecdsa', '-b', '384']],
  ['ecdsa521', ['-t', 'ecdsa', '-b', '521']],
] as const;
const NS = 'bareon-manifest';
const pub = (name: string) =>
  readFile(path.join(dir, `${name}.pub`), 'utf8').then((t) => t.trim().split(' ').slice(0, 2).join(' '));
const sshSign = async (key: string, message: Buffer, namespace = NS) =>
  (await execa('ssh-keygen', ['-q', '-Y', 'sign', '-n', namespace, '-f', path.join(dir, key)], { input: message }))
    .stdout;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sshsig-'));
  await Promise.all(
    KEYS.map(([name, args]) => execa('ssh-keygen', ['-q', ...args, '-N', '', '-C', name, '-f', path.join(dir, name)])),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('SSH signatures made by ssh-keygen -Y sign', () => {
  const message = Buffer.from('{"manifest_version":1}\n');

  it.each(KEYS.map(([name]) => name))('verify with a %s key, and fail when one byte changes', async (name) => {
    const signers = parseAllowedSigners(`${name}@site ${await pub(name)}\n`);
    const sig = await sshSign(name, message);
    expect(verifySshSignature(message, sig, signers, NS)).toMatchObject({ principal: `${name}@site`, line: 1 });
    const altered = Buffer.from(message);
    altered[5] ^= 1;
    expect(() => verifySshSignature(altered, sig, signers, NS)).toThrow(/does not match the content/);
  });

  it('are refused when the key is not an allowed signer, and the error names its fingerprint', async () => {
    const signers = parseAllowedSigners(`other ${await pub('rsa')}\n`);
    const sig = await sshSign('ed25519', message);
    expect(() => verifySshSignature(message, sig, signers, NS)).toThrow(
      /ssh-ed25519 key SHA256:\S+, which no allowed signer lists/,
    );
  });

  it('are refused for another namespace, or where the signer is limited to other namespaces or times', async () => {
    const key = await pub('ed25519');
    const sig = await sshSign('ed25519', message, 'file');
    expect(() => verifySshSignature(message, sig, parseAllowedSigners(`a ${key}`), NS)).toThrow(/namespace "file"/);
    const good = await sshSign('ed25519', message);
    expect(() => verifySshSignature(message, good, parseAllowedSigners(`a namespaces="git,file" ${key}`), NS)).toThrow(
      /not for namespace/,
    );
    expect(() =>
      verifySshSignature(message, good, parseAllowedSigners(`a valid-before="20200101Z" ${key}`), NS),
    ).toThrow(/not for namespace .* at /);
    expect(
      verifySshSignature(message, good, parseAllowedSigners(`a,b namespaces="bareon-*" ${key}`), NS).principal,
    ).toBe('a');
  });

  it('garbage is refused as not a signature', () => {
    expect(() => verifySshSignature(message, 'hello', [], NS)).toThrow(SignatureError);
    const truncated = '-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAADM=\n-----END SSH SIGNATURE-----\n';
    expect(() => verifySshSignature(message, truncated, [], NS)).toThrow(/truncated/);
  });
});

describe('allowed-signers files', () => {
  it('name the line of an error', async () => {
    const key = await pub('ed25519');
    expect(() => parseAllowedSigners(`# keys\n\nbuilder ${key}\nbroken line\n`)).toThrow(/^line 4: /);
    expect(() => parseAllowedSigners(`x frobnicate ${key}`)).toThrow(/unknown option "frobnicate"/);
  });
});

describe("bareon's signatures", () => {
  it.each(['ed25519', 'rsa'])('are accepted by ssh-keygen -Y verify (%s key)', async (name) => {
    const file = path.join(dir, `m-${name}.json`);
    await writeFile(file, '{"name":"m"}\n');
    const sig = await signFile(file, path.join(dir, name));
    const allowed = path.join(dir, `allowed-${name}`);
    await writeFile(allowed, `builder@site namespaces="${NS}" ${await pub(name)}\n`);
    const r = await execa('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'builder@site', '-n', NS, '-s', sig], {
      input: await readFile(file),
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Good "bareon-manifest" signature for builder@site/);
    // and by bareon's own reader
    expect(
      verifySshSignature(
        await readFile(file),
        await readFile(sig, 'utf8'),
        parseAllowedSigners(`b ${await pub(name)}`),
        NS,
      ).principal,
    ).toBe('b');
  });
});
