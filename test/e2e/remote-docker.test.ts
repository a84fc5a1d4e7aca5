import { execa } from 'execa';
import { mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, REPO } from '../helpers/cli.js';

const DOCKER_TCP = 'tcp://127.0.0.1:2375';

describe('a qcow2 build with nothing on the host but node and a Docker API over TCP', () => {
  it('needs no host disk tools and no shared paths', async () => {
    const ping = await fetch('http://127.0.0.1:2375/_ping').then((r) => r.text()).catch(() => 'unreachable');
    expect(ping, 'dockerd must listen on 127.0.0.1:2375 (scripts/setup.sh starts it so)').toBe('OK');

    const bin = await mkdtemp(path.join(tmpdir(), 'bareon-path-'));
    await symlink(process.execPath, path.join(bin, 'node'));
    const docker = (await execa('sh', ['-c', 'command -v docker'])).stdout;
    await symlink(docker, path.join(bin, 'docker'));
    const out = await mkdtemp(path.join(tmpdir(), 'bareon-remote-'));
    const profile = path.join(REPO, 'profiles/debian-bootable.yaml');

    for (const tool of ['sgdisk', 'mkfs.ext4', 'qemu-img', 'grub-mkimage', 'mcopy']) {
      const r = await execa('sh', ['-c', `command -v ${tool}`], { env: { PATH: bin }, reject: false });
      expect(r.exitCode, `${tool} must not be reachable`).not.toBe(0);
    }
    const profileCopy = path.join(out, 'remote.yaml');
    await execa('sh', ['-c', `sed -e 's/^name: .*/name: remote/' -e 's/^outputs: .*/outputs: [qcow2]/' ${profile} > ${profileCopy}`]);
    const r = await execa(path.join(bin, 'node'), [BIN.build, profileCopy, '-o', path.join(out, 'out')], {
      env: { PATH: bin, DOCKER_HOST: DOCKER_TCP, BAREON_PLUGIN_PATH: '' },
      extendEnv: false,
      reject: false,
      all: true,
    });
    expect(r.exitCode, String(r.all).slice(-3000)).toBe(0);
    await execa('qemu-img', ['check', path.join(out, 'out', 'remote.qcow2')]);
  });
});
