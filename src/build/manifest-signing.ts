import { access, constants, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { ValidationError, BareonError } from '../core/errors.js';

/** The namespace of bareon's manifest signatures: `ssh-keygen -Y verify -n bareon-manifest` checks them. */
export const SIGNATURE_NAMESPACE = 'bareon-manifest';

/**
 * Checks a `--sign` key before a build starts: ssh-keygen is there, the key file reads, and a public
 * key (whose private half is in ssh-agent) comes with an agent to ask.
 */
export async function checkSigningKey(key: string): Promise<void> {
  const st = await stat(key).catch(() => undefined);
  if (!st?.isFile())
    throw new ValidationError(`--sign: ${key}: ${st ? 'not a regular file' : 'no such file'}`, {
      hint: 'give an SSH private key file (ed25519 or RSA), or a .pub whose private key is in ssh-agent',
    });
  await access(key, constants.R_OK).catch(() => {
    throw new ValidationError(`--sign: ${key}: not readable`);
  });
  const head = (await readFile(key, 'latin1')).slice(0, 100);
  const isPublic = /^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+/.test(head);
  if (!isPublic && !head.includes('PRIVATE KEY-----'))
    throw new ValidationError(`--sign: ${key}: not an SSH private or public key`, {
      hint: 'make one with ssh-keygen -t ed25519 -f KEY',
    });
  if (isPublic && !process.env.SSH_AUTH_SOCK)
    throw new ValidationError(
      `--sign: ${key} is a public key, and no ssh-agent is reachable (SSH_AUTH_SOCK is unset)`,
      {
        hint: 'give the private key file, or run the build where ssh-agent holds the private key',
      },
    );
  const { execa } = await import('execa');
  const probe = await execa('ssh-keygen', ['-?'], { reject: false });
  if (probe.failed && probe.exitCode === undefined)
    throw new ValidationError('--sign: ssh-keygen is not installed', { hint: 'apt-get install openssh-client' });
}

/**
 * Signs `file` with `key` as `ssh-keygen -Y sign -n bareon-manifest` does and writes the signature
 * to `<file>.sig` (whole or not at all). The signature covers the file's bytes as they are.
 */
export async function signFile(file: string, key: string, signal?: AbortSignal): Promise<string> {
  const { execa } = await import('execa');
  const sig = `${file}.sig`;
  const partial = `${sig}.partial`;
  const content = await readFile(file);
  // from stdin to stdout: ssh-keygen asks before overwriting a .sig it writes itself
  const r = await execa('ssh-keygen', ['-q', '-Y', 'sign', '-n', SIGNATURE_NAMESPACE, '-f', key], {
    input: content,
    encoding: 'utf8',
    reject: false,
    // a passphrase is asked on the terminal: ssh-keygen opens /dev/tty itself
    cancelSignal: signal,
  });
  if (r.exitCode !== 0 || !r.stdout.includes('BEGIN SSH SIGNATURE'))
    throw new BareonError(`signing ${file} with ${key} failed (ssh-keygen exit ${r.exitCode})`, {
      details: String(r.stderr).trim(),
      hint: 'a key with a passphrase needs a terminal or ssh-agent',
    });
  await writeFile(partial, r.stdout);
  await rename(partial, sig);
  return sig;
}

/** Removes a signature left by an earlier build: it would not match a manifest written again. */
export async function removeStaleSignature(file: string): Promise<void> {
  await rm(`${file}.sig`, { force: true });
}
