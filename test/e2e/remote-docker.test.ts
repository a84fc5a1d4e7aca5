import { execa } from 'execa';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { connect, type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, REPO } from '../helpers/cli.js';

let dir: string;
let certs: string;
let port: number;
let proxy: tls.Server | undefined;

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as `docker --tlsverify` expects them in DOCKER_CERT_PATH. */
async function makeCertificates(into: string): Promise<void> {
  const sh = (cmd: string) => execa('sh', ['-ec', cmd], { cwd: into });
  await sh(
    'openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=bareon-test-ca -keyout ca-key.pem -out ca.pem 2>/dev/null',
  );
  await sh(`openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server-key.pem -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 -extfile server.ext -out server.pem 2>/dev/null`);
  await sh(`openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout key.pem -out client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\\n' > client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 1 -extfile client.ext -out cert.pem 2>/dev/null`);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join('/var/tmp', 'bareon-remote-'));
  certs = path.join(dir, 'certs');
  await execa('mkdir', [certs]);
  await makeCertificates(certs);
  // The Docker API over TLS with client certificates on a random loopback port, in front of the local
  // daemon: what `dockerd --tlsverify` offers, without a second daemon and its own image store.
  const read = (f: string) => readFile(path.join(certs, f));
  proxy = tls.createServer(
    {
      key: await read('server-key.pem'),
      cert: await read('server.pem'),
      ca: await read('ca.pem'),
      requestCert: true,
      rejectUnauthorized: true,
      allowHalfOpen: true,
    },
    (client) => {
      const daemon = connect({ path: '/var/run/docker.sock', allowHalfOpen: true });
      client.pipe(daemon).on('error', () => client.destroy());
      daemon.pipe(client).on('error', () => daemon.destroy());
      client.on('error', () => daemon.destroy());
      daemon.on('error', () => client.destroy());
    },
  );
  await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
  port = (proxy.address() as AddressInfo).port;
  for (let i = 0; i < 40; i++) {
    const r = await execa(
      'curl',
      [
        '-sf',
        '--cacert',
        `${certs}/ca.pem`,
        '--cert',
        `${certs}/cert.pem`,
        '--key',
        `${certs}/key.pem`,
        `https://127.0.0.1:${port}/_ping`,
      ],
      { reject: false },
    );
    if (r.stdout === 'OK') return;
    await new Promise((r2) => setTimeout(r2, 250));
  }
  throw new Error('the TLS endpoint did not come up');
});

afterAll(async () => {
  await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve(undefined)));
  await rm(dir, { recursive: true, force: true });
});

describe('a qcow2 build with nothing on the host but node and a Docker API over TLS', () => {
  it('finds the daemon listening on no TCP port of its own (make setup opens none)', async () => {
    const listening = (await execa('ss', ['-Hltnp'])).stdout;
    expect(listening).not.toMatch(/"dockerd"/);
  });

  it('refuses a client without a certificate', async () => {
    const anonymous = await execa('curl', ['-sf', '--cacert', `${certs}/ca.pem`, `https://127.0.0.1:${port}/_ping`], {
      reject: false,
    });
    expect(anonymous.exitCode).not.toBe(0);
    const r = await execa(
      process.execPath,
      [BIN.build, path.join(REPO, 'profiles/debian-minimal.yaml'), '-o', path.join(dir, 'refused')],
      {
        env: {
          DOCKER_HOST: `tcp://127.0.0.1:${port}`,
          DOCKER_TLS_VERIFY: '1',
          DOCKER_CERT_PATH: path.join(dir, 'no-such-certs'),
          BAREON_PLUGIN_PATH: '',
        },
        reject: false,
        all: true,
      },
    );
    expect(r.exitCode, String(r.all)).not.toBe(0);
    expect(String(r.all)).not.toMatch(/\n\s+at /);
  });

  it('builds with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, with no host disk tools and no shared paths', async () => {
    const bin = await mkdtemp(path.join(tmpdir(), 'bareon-path-'));
    await symlink(process.execPath, path.join(bin, 'node'));
    await symlink((await execa('sh', ['-c', 'command -v docker'])).stdout, path.join(bin, 'docker'));
    const out = path.join(dir, 'out');
    for (const tool of ['sgdisk', 'mkfs.ext4', 'qemu-img', 'grub-mkimage', 'mcopy']) {
      const r = await execa('sh', ['-c', `command -v ${tool}`], { env: { PATH: bin }, reject: false });
      expect(r.exitCode, `${tool} must not be reachable`).not.toBe(0);
    }
    const profileCopy = path.join(dir, 'remote.yaml');
    await execa('sh', [
      '-c',
      `sed -e 's/^name: .*/name: remote/' -e 's/^outputs: .*/outputs: [qcow2]/' ${path.join(REPO, 'profiles/debian-bootable.yaml')} > ${profileCopy}`,
    ]);
    const r = await execa(path.join(bin, 'node'), [BIN.build, profileCopy, '-o', out], {
      env: {
        PATH: bin,
        DOCKER_HOST: `tcp://127.0.0.1:${port}`,
        DOCKER_TLS_VERIFY: '1',
        DOCKER_CERT_PATH: certs,
        BAREON_PLUGIN_PATH: '',
      },
      extendEnv: false,
      reject: false,
      all: true,
    });
    expect(r.exitCode, String(r.all).slice(-3000)).toBe(0);
    await execa('qemu-img', ['check', path.join(out, 'remote.qcow2')]);
    await rm(bin, { recursive: true, force: true });
  });
});
