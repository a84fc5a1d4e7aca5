import { BareonError } from './errors.js';

/** A system tool failed: names the step, the command, its exit code and the tail of its output. */
export class ToolError extends BareonError {
  constructor(step: string, cmd: string[], exitCode: number, tail: string) {
    super(`${step}: ${cmd[0]} failed with exit code ${exitCode}`, {
      details: `command: ${cmd.map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n${tail.replace(/^/gm, '  ')}`,
    });
  }
}

/** What a finished system tool left: its exit code and output. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The last lines of stdout and stderr interleaved, for error reports. */
  tail: string;
}
