import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { parse, stringify } from 'yaml';
import { buildImage, REPO } from '../helpers/cli.js';
import { IMAGES_DIR } from './bootable-images.js';

declare module 'vitest' {
  export interface ProvidedContext {
    agentImage: {
      qcow2: string;
      qcow2Sha256: string;
      vmlinuz: string;
      initramfs: string;
      tar: string;
      tarSha256: string;
      buildSeconds: number;
    };
  }
}

type Manifest = { artifacts: { uri: string; format: string; sha256: string }[] };

async function build(
  profile: string,
  out: string,
  ...flags: string[]
): Promise<{ file(format: string): string; sha256(format: string): string }> {
  await buildImage(profile, out, { args: flags });
  const name = (parse(await readFile(profile, 'utf8')) as { name: string }).name;
  const manifest = JSON.parse(await readFile(path.join(out, `${name}.manifest.json`), 'utf8')) as Manifest;
  const artifact = (format: string) => manifest.artifacts.find((a) => a.format === format) ?? { uri: '', sha256: '' };
  return { file: (format) => path.resolve(out, artifact(format).uri), sha256: (format) => artifact(format).sha256 };
}

/**
 * Builds the deploy agent once per run, as `make agent` does: scripts/agent-bundle.sh stages Node and
 * this checkout's bareon, then profiles/deploy-agent.yaml gives a qcow2 (the agent on a disk) and a
 * vmlinuz + initramfs pair (the agent over the network), through --outputs qcow2,netboot.
 *
 * The rootfs the RAID and LVM jobs deploy is the agent's package set without /opt/bareon and with
 * only the kernel modules a virtio VM needs: extraction is most of a job's time under TCG, and the
 * packages step is a cache hit on the agent's.
 */
export default async function buildAgentImage(project: TestProject): Promise<void> {
  const out = path.join(IMAGES_DIR, 'agent');
  await mkdir(out, { recursive: true });
  const bundle = await execa('bash', [path.join(REPO, 'scripts/agent-bundle.sh'), path.join(REPO, 'build/agent')], {
    reject: false,
    all: true,
  });
  if (bundle.exitCode !== 0) throw new Error(`agent-bundle.sh failed:\n${bundle.all}`);
  const started = Date.now();
  // the tests boot the agent from its qcow2 and over the network; its tar.zst output is not used
  const agent = await build(path.join(REPO, 'profiles/deploy-agent.yaml'), out, '--outputs', 'qcow2,netboot');

  const profile = parse(await readFile(path.join(REPO, 'profiles/deploy-agent.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  const target = {
    ...profile,
    name: 'raid-target',
    files: [],
    services: {},
    hostname: 'raid-target',
    // every module directory goes but fs, lib, crypto, arch, block and drivers/{md,block,virtio,char};
    // of fs, the network, cluster and foreign filesystems go too; and so do translations and docs
    // (a quarter of the files that every job extracts under TCG)
    run: [
      'cd /usr/lib/modules/* && find kernel -mindepth 1 -maxdepth 2 -type d ! -regex "kernel/\\(\\(fs\\|lib\\|crypto\\|arch\\|block\\)\\(/.*\\)?\\|drivers\\|drivers/\\(md\\|block\\|virtio\\|char\\)\\)" -prune -exec rm -rf {} + &&' +
        ' (cd kernel/fs && rm -rf btrfs smb ocfs2 nfs nfsd nfs_common ceph gfs2 ntfs3 f2fs afs 9p orangefs dlm jfs nilfs2 udf hfs hfsplus ubifs coda) && rm -f kernel/lib/test_*.ko &&' +
        ' depmod -a "$(basename "$PWD")" && rm -rf /usr/share/locale/* /usr/share/man/* /usr/share/doc/*',
    ],
    outputs: ['tar.zst'],
  };
  delete target.layout;
  const targetProfile = path.join(IMAGES_DIR, 'raid-target.yaml');
  await writeFile(targetProfile, stringify(target));
  const targetOut = path.join(IMAGES_DIR, 'raid-target');
  const rootfs = await build(targetProfile, targetOut);

  project.provide('agentImage', {
    qcow2: agent.file('qcow2'),
    qcow2Sha256: agent.sha256('qcow2'),
    vmlinuz: agent.file('vmlinuz'),
    initramfs: agent.file('initramfs'),
    tar: rootfs.file('tar.zst'),
    tarSha256: rootfs.sha256('tar.zst'),
    buildSeconds: (Date.now() - started) / 1000,
  });
}
