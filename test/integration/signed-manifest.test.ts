import { execa } from 'execa';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bareon } from '../helpers/cli.js';
import { deploy, sha256File } from '../helpers/deploy.js';

/**
 * bareon-deploy --trust: a manifest deploys only with a signature by an allowed signer; unsigned,
 * altered or foreign-key manifests exit 2 before the target is opened for writing. Signatures come
 * from ssh-keygen -Y sign here (interop one way; ssh-signature.test.ts checks bareon's with
 * ssh-keygen -Y verify), and from bareon-build --sign in build.test.ts.
 */
const MiB = 2 ** 20;
const NS = 'bareon-manifest';
let dir: string;
let server: http.Server;
let base: string;
let disk: string;
let diskSha: string;
/** A target holding a pattern: a refused deploy must leave it as it is, byte for byte and mtime. */
let sentinel: Buffer;

async function signWith(key: string, file: string): Promise<void> {
  await rm(`${file}.sig`, { force: true }); // ssh-keygen would ask before overwriting it
  await execa('ssh-keygen', ['-q', '-Y', 'sign', '-n', NS, '-f', path.join(dir, key), file]);
}

async function manifestFor(name: string): Promise<string> {
  const file = path.join(dir, `${name}.manifest.json`);
  await writeFile(
    file,
    `${JSON.stringify(
      {
        manifest_version: 1,
        name,
        created: '2026-01-01T00:00:00Z',
        profile_digest: 'x',
        base_image: 'sha256:0',
        image: 'sha256:1',
        builder: 'debian',
        artifacts: [{ uri: 'disk.raw', format: 'raw', sha256: diskSha, size: 16 * MiB, virtual_size: 16 * MiB }],
        packages: [],
      },
      null,
      2,
    )}\n`,
  );
  return file;
}

async function freshTarget(name: string): Promise<string> {
  const target = path.join(dir, `${name}.img`);
  await writeFile(target, sentinel);
  return target;
}

async function untouched(target: string, before: number): Promise<void> {
  expect((await readFile(target)).equals(sentinel), `${target} was written`).toBe(true);
  expect((await stat(target)).mtimeMs).toBe(before);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'signed-'));
  for (const [name, args] of [
    ['builder', ['-t', 'ed25519']],
    ['stranger', ['-t', 'ed25519']],
    ['rsa-builder', ['-t', 'rsa', '-b', '3072']],
  ] as const)
    await execa('ssh-keygen', ['-q', ...args, '-N', '', '-C', name, '-f', path.join(dir, name)]);
  const pub = async (name: string) =>
    (await readFile(path.join(dir, `${name}.pub`), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(
    path.join(dir, 'allowed_signers'),
    `# who may sign images for this site\nbuilder@site namespaces="${NS}" ${await pub('builder')}\nci@site ${await pub('rsa-builder')}\n`,
  );
  disk = path.join(dir, 'disk.raw');
  await execa('truncate', ['-s', `${16 * MiB}`, disk]);
  await execa('sgdisk', ['-n', '1:2048:+8M', '-t', '1:8300', '-c', '1:data', disk]);
  diskSha = await sha256File(disk);
  sentinel = Buffer.alloc(24 * MiB, 0xa5);
  server = http.createServer(async (req, res) => {
    const file = path.join(dir, path.basename(req.url ?? ''));
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': st.size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await rm(dir, { recursive: true, force: true });
});

const trust = () => ['--trust', path.join(dir, 'allowed_signers')];

describe('bareon-deploy --trust', () => {
  it('deploys a manifest signed by ssh-keygen -Y sign with an allowed key, and names the signer', async () => {
    const m = await manifestFor('good');
    await signWith('builder', m);
    const target = path.join(dir, 'good.img'); // made at the image's size: the same bytes, backup GPT included
    const r = await deploy([m, target, ...trust()]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(r.all).toMatch(/manifest signed by builder@site \(ssh-ed25519 SHA256:\S+, \S+allowed_signers:2\)/);
    expect((await readFile(target)).equals(await readFile(disk))).toBe(true);
  });

  it('deploys a remote manifest whose signature is served beside it (RSA key)', async () => {
    const m = await manifestFor('remote');
    await signWith('rsa-builder', m);
    const target = await freshTarget('remote');
    const r = await deploy([`${base}/remote.manifest.json`, target, ...trust()]);
    expect(r.exitCode, String(r.all)).toBe(0);
    expect(r.all).toMatch(/manifest signed by ci@site \(ssh-rsa /);
  });

  const refusals: [string, (m: string) => Promise<void>, RegExp][] = [
    ['an unsigned manifest', async () => {}, /unsigned \(no \S+\.sig\); --trust accepts only signed manifests/],
    [
      'a manifest altered after signing',
      async (m) => {
        await signWith('builder', m);
        await writeFile(m, (await readFile(m, 'utf8')).replace('"packages": []', '"packages": [ ]'));
      },
      /not accepted: the signature by key SHA256:\S+ does not match the content: it changed after signing/,
    ],
    [
      'a manifest signed by a key not in the allowed signers',
      (m) => signWith('stranger', m),
      /not accepted: signed by ssh-ed25519 key SHA256:\S+, which no allowed signer lists/,
    ],
  ];
  it.each(refusals)('refuses %s with exit 2 before the target is opened for writing', async (name, prepare, error) => {
    const m = await manifestFor(name.replace(/\W+/g, '-'));
    await prepare(m);
    const target = await freshTarget(name.replace(/\W+/g, '-'));
    const before = (await stat(target)).mtimeMs;
    const r = await deploy([m, target, ...trust()]);
    expect(r.exitCode, String(r.all)).toBe(2);
    expect(r.stderr).toMatch(error);
    await untouched(target, before);
    // a target that does not exist is not created either
    const absent = path.join(dir, `${name.replace(/\W+/g, '-')}-absent.img`);
    expect((await deploy([m, absent, '--size', '32M', ...trust()])).exitCode).toBe(2);
    await expect(stat(absent)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a bare image, --no-verify and --checksum: only the signed manifest says what is written', async () => {
    const target = await freshTarget('bare');
    const before = (await stat(target)).mtimeMs;
    const bare = await deploy([disk, target, ...trust()]);
    expect(bare.exitCode).toBe(2);
    expect(bare.stderr).toMatch(
      /--trust: \S+disk\.raw is a disk, not a manifest; only a signed manifest can be trusted/,
    );
    const m = await manifestFor('flags');
    await signWith('builder', m);
    const noVerify = await deploy([m, target, '--no-verify', ...trust()]);
    expect(noVerify.stderr).toMatch(/--trust with --no-verify/);
    const checksum = await deploy([m, target, '--checksum', `sha256:${diskSha}`, ...trust()]);
    expect(checksum.stderr).toMatch(/--trust with --checksum/);
    await untouched(target, before);
  });

  it('in a job: trust: binds the agent the same way', async () => {
    const m = await manifestFor('job');
    await signWith('stranger', m);
    const job = path.join(dir, 'job.yaml');
    // no checksum: the signed manifest gives it
    await writeFile(job, 'source: job.manifest.json\ntrust: allowed_signers\nwhen_done: none\n');
    const r = await bareon('bareon', ['agent', '--job', job]);
    expect(r.stdout).toMatch(
      /bareon-job: failed: manifest \S+job\.manifest\.json: signature \S+ not accepted: signed by ssh-ed25519 key/,
    );
    // signed by the builder, it passes the signature and stops only for want of a target disk
    await signWith('builder', m);
    const signed = await bareon('bareon', ['agent', '--job', job]);
    expect(signed.stdout).toMatch(/manifest signed by builder@site/);
    expect(signed.stdout).toMatch(/bareon-job: failed: .*target/);
  });
});
