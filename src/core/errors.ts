/** Exit codes shared by every bareon command. */
export const ExitCode = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/**
 * Base of every error bareon reports to a user. `message` is the short form shown on one line;
 * `hint` says how to fix it; `details` (for example a command's output tail) is printed below.
 */
export class BareonError extends Error {
  readonly exitCode: number;
  readonly hint?: string;
  readonly details?: string;
  constructor(message: string, opts: { exitCode?: number; hint?: string; details?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.failure;
    this.hint = opts.hint;
    this.details = opts.details;
  }
}

/** Bad input: a profile, a layout, a plugin option or a command-line argument (exit 2). */
export class ValidationError extends BareonError {
  constructor(message: string, opts: { hint?: string; details?: string; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: ExitCode.usage });
  }
}

/** The run was stopped by SIGINT or SIGTERM (exit 130). */
export class InterruptedError extends BareonError {
  constructor(signal: string) {
    super(`interrupted by ${signal}`, { exitCode: ExitCode.interrupted });
  }
}

/** Formats any thrown value for a terminal: message, hint and details. */
export function formatError(err: unknown): string {
  if (err instanceof BareonError) {
    const lines = [`error: ${err.message}`];
    if (err.hint) lines.push(`hint: ${err.hint}`);
    if (err.details) lines.push(err.details.replace(/\s+$/, ''));
    return lines.join('\n');
  }
  if (err instanceof Error) return `error: ${err.message}`;
  return `error: ${String(err)}`;
}

export function exitCodeOf(err: unknown): number {
  return err instanceof BareonError ? err.exitCode : ExitCode.failure;
}
