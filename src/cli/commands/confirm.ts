import { createInterface } from 'node:readline/promises';
import { ValidationError } from '../../core/errors.js';
import { describeTarget, type TargetInfo } from '../../host/disk-target.js';

/** Asks on the terminal before a block device is overwritten; refuses without a terminal. */
export async function confirmOverwrite(info: TargetInfo, yes: boolean): Promise<void> {
  if (yes || info.kind === 'file') return;
  if (!process.stdin.isTTY) {
    throw new ValidationError(`refusing to overwrite block device ${describeTarget(info)} without --yes`, { hint: 'stdin is not a terminal, so bareon cannot ask; pass --yes to confirm' });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`Everything on ${describeTarget(info)} will be overwritten.\nType "yes" to continue: `);
    if (answer.trim() !== 'yes') throw new ValidationError(`not confirmed; ${info.path} was not touched`);
  } finally {
    rl.close();
  }
}

