import { execa, type Options, type Result } from 'execa';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const BIN = {
  bareon: path.join(REPO, 'dist/src/cli/bareon.js'),
  build: path.join(REPO, 'dist/src/cli/bareon-build.js'),
  deploy: path.join(REPO, 'dist/src/cli/bareon-deploy.js'),
};

/** bareon-build PROFILE -o OUT, as the test setups build their images: throws with the output's tail when it fails. */
export async function buildImage(
  profile: string,
  out: string,
  opts: { args?: string[]; env?: Record<string, string> } = {},
): Promise<void> {
  const r = await bareon('build', [profile, '-o', out, ...(opts.args ?? [])], { env: opts.env });
  if (r.exitCode !== 0)
    throw new Error(`building ${profile} failed (exit ${r.exitCode}):\n${String(r.all).slice(-4000)}`);
}

/** Runs a bareon command and returns its result whatever the exit code. */
export function bareon(
  bin: keyof typeof BIN,
  args: string[],
  opts: Options = {},
): Promise<Result> & { kill(signal?: NodeJS.Signals): boolean } {
  return execa(process.execPath, [BIN[bin], ...args], {
    reject: false,
    all: true,
    ...opts,
    env: { BAREON_PLUGIN_PATH: '', ...opts.env },
  }) as never;
}
