import { execa, type Options, type Result } from 'execa';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const BIN = {
  bareon: path.join(REPO, 'dist/src/cli/bareon.js'),
  build: path.join(REPO, 'dist/src/cli/bareon-build.js'),
  deploy: path.join(REPO, 'dist/src/cli/bareon-deploy.js'),
};

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
