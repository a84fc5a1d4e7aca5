/** A teardown registered by a plugin: container removal, loop detach, temp file deletion… */
export type Teardown = () => unknown | Promise<unknown>;

/**
 * LIFO stack of teardowns. Each runs at most once, in reverse order of registration, whether the
 * run succeeded, failed or was interrupted. A failing teardown does not stop the others.
 */
export class CleanupStack {
  private readonly stack: { label: string; fn: Teardown; onFailureOnly?: boolean }[] = [];
  private draining: Promise<Error[]> | undefined;
  private running: string | undefined;
  private succeeded = false;

  /** Whether a drain for a run that succeeded has begun: the work is done, what remains is releasing what it held. */
  get completed(): boolean {
    return this.succeeded;
  }

  /** Registers `fn`; the returned function runs it now (and drops it from the stack). */
  defer(fn: Teardown, label = 'cleanup'): () => Promise<void> {
    const entry = { label, fn };
    this.stack.push(entry);
    return async () => {
      const i = this.stack.indexOf(entry);
      if (i < 0) return;
      this.stack.splice(i, 1);
      await fn();
    };
  }

  /**
   * Registers `fn` to run only if the run fails or is interrupted (for example clearing the partition
   * table of a half-written disk). Returns a function that drops it, once the work it guards is complete.
   */
  deferOnFailure(fn: Teardown, label: string): () => void {
    const entry = { label, fn, onFailureOnly: true };
    this.stack.push(entry);
    return () => {
      const i = this.stack.indexOf(entry);
      if (i >= 0) this.stack.splice(i, 1);
    };
  }

  get size(): number {
    return this.stack.length;
  }

  /** The labels of the teardowns not done yet, the one running first: what a forced exit leaves behind. */
  pending(): string[] {
    return [...(this.running ? [this.running] : []), ...this.stack.map((e) => e.label).reverse()];
  }

  /**
   * Runs every pending teardown, newest first; failure-only ones run unless `outcome` is "ok".
   * Concurrent callers share one drain. Returns the failures.
   */
  run(outcome: 'ok' | 'failed' = 'failed'): Promise<Error[]> {
    if (outcome === 'ok' && !this.draining) this.succeeded = true;
    this.draining ??= (async () => {
      const failures: Error[] = [];
      while (this.stack.length > 0) {
        const { label, fn, onFailureOnly } = this.stack.pop()!;
        if (onFailureOnly && outcome === 'ok') continue;
        this.running = label;
        try {
          await fn();
        } catch (err) {
          failures.push(new Error(`${label}: ${(err as Error)?.message ?? String(err)}`));
        }
        this.running = undefined;
      }
      this.draining = undefined;
      return failures;
    })();
    return this.draining;
  }
}
