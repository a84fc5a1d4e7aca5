import { execa } from 'execa';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { BIN, REPO } from '../helpers/cli.js';
import { IMAGES_DIR } from './bootable-images.js';

declare module 'vitest' {
  export interface ProvidedContext {
    agentImage: { qcow2: string; qcow2Sha256: string; tar: string; tarSha256: string; buildSeconds: number };
  }
}

/**
 * Builds the deploy agent once per run, as `make agent` does: scripts/agent-bundle.sh stages Node and
 * this checkout's bareon, then profiles/deploy-agent.yaml gives a qcow2 (the agent) and a tar.zst
 * (a rootfs with mdadm and lvm2, deployed by the agent tests).
 */
export default async function buildAgentImage(project: TestProject): Promise<void> {
  const out = path.join(IMAGES_DIR, 'agent');
  await mkdir(out, { recursive: true });
  const bundle = await execa('bash', [path.join(REPO, 'scripts/agent-bundle.sh'), path.join(REPO, 'build/agent')], { reject: false, all: true });
  if (bundle.exitCode !== 0) throw new Error(`agent-bundle.sh failed:\n${bundle.all}`);
  const started = Date.now();
  const r = await execa(process.execPath, [BIN.build, path.join(REPO, 'profiles/deploy-agent.yaml'), '-o', out], { reject: false, all: true, env: { BAREON_PLUGIN_PATH: '' } });
  if (r.exitCode !== 0) throw new Error(`building the deploy agent failed (exit ${r.exitCode}):\n${String(r.all).slice(-4000)}`);
  const manifest = JSON.parse(await readFile(path.join(out, 'deploy-agent.manifest.json'), 'utf8')) as { artifacts: { uri: string; format: string; sha256: string }[] };
  const tar = manifest.artifacts.find((a) => a.format === 'tar.zst')!;
  const qcow2 = manifest.artifacts.find((a) => a.format === 'qcow2')!;
  project.provide('agentImage', {
    qcow2: path.resolve(out, qcow2.uri),
    qcow2Sha256: qcow2.sha256,
    tar: path.resolve(out, tar.uri),
    tarSha256: tar.sha256,
    buildSeconds: (Date.now() - started) / 1000,
  });
}
