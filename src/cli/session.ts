import { randomBytes } from 'node:crypto';
import { CleanupStack } from '../core/cleanup.js';
import { ExitCode, exitCodeOf, formatError, InterruptedError } from '../core/errors.js';
import { Reporter, type LogFormat } from '../core/reporter.js';

/** What one command invocation owns: its run id, cancellation, teardown stack and output. */
export interface Session {
  runId: string;
  signal: AbortSignal;
  cleanup: CleanupStack;
  reporter: Reporter;
}

export function newRunId(): string {
  return `${new Date()
    .toISOString()
    .replace(/[-:TZ.]/g, '')
    .slice(0, 14)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Runs a command body with signal handling: SIGINT/SIGTERM/SIGHUP abort the run, drain the cleanup
 * stack (LIFO) and exit 130; a second signal exits at once. Errors become messages and exit codes.
 * The body may return an exit code for a run that succeeded with a finding (`bareon diff`: 1).
 * Output to a reader that went away (`| head`, a dropped SSH session) is dropped; the run goes on.
 */
export async function runSession(logFormat: LogFormat, body: (s: Session) => Promise<void | number>): Promise<never> {
  const controller = new AbortController();
  const cleanup = new CleanupStack();
  const reporter = new Reporter(logFormat, Boolean(process.stdout.isTTY));
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      const left = cleanup.pending();
      if (left.length)
        process.stderr.write(
          `${signal} again: exiting before the cleanup finished; left undone: ${left.join('; ')} (bareon gc removes bareon's containers)\n`,
        );
      process.exit(ExitCode.interrupted);
    }
    interrupted = true;
    if (cleanup.completed) {
      // the work is done and its teardowns (unmounts, the final flush) are running: stopping them would
      // leave a finished disk looking interrupted, or a mount behind
      process.stderr.write(
        `\n${signal}: the run has finished; releasing what it held, then exiting (${signal} again exits at once)\n`,
      );
      return;
    }
    controller.abort(new InterruptedError(signal));
    process.stderr.write(`\n${signal}: stopping and cleaning up…\n`);
    // teardowns start now, while the run's tools are being stopped: one that undoes a tool's work
    // waits for that tool to exit first (see mountDevice), the rest must not wait for the run to unwind
    void cleanup.run().then((failures) => {
      for (const f of failures) reporter.warn(`cleanup failed: ${f.message}`);
      process.exit(ExitCode.interrupted);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  for (const out of [process.stdout, process.stderr]) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  // A plugin may await something that holds no handle (a promise it resolves on a signal); the run is
  // still in progress, so keep the process alive until the body settles.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    const code = await body({ runId: newRunId(), signal: controller.signal, cleanup, reporter });
    clearInterval(keepAlive);
    // a teardown that fails after a successful run (an unmount, a flush) means the result is not certain
    const failures = await cleanup.run('ok');
    for (const f of failures)
      process.stderr.write(`error: the run finished, but releasing what it held failed: ${f.message}\n`);
    process.exit(failures.length ? ExitCode.failure : (code ?? ExitCode.ok));
  } catch (err) {
    if (interrupted) return new Promise<never>(() => {});
    clearInterval(keepAlive);
    const failures = await cleanup.run();
    process.stderr.write(`${formatError(err)}\n`);
    for (const f of failures) reporter.warn(`cleanup failed: ${f.message}`);
    if (process.env.BAREON_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(exitCodeOf(err));
  }
}
