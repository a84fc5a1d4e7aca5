/** A teardown registered by a plugin: container removal, loop detach, temp file deletion… */
export type Teardown = () => unknown | Promise<unknown>;

/**
 * LIFO stack of teardowns. Each runs at most once, in reverse order of registration, whether the
 * run succeeded, failed or was interrupted. A failing teardown does not stop the others.
 */
export class CleanupStack {
  private readonly stack: { label: string; fn: Teardown }[] = [];
  private draining: Promise<Error[]> | undefined;

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

  get size(): number {
    return this.stack.length;
  }

  /** Runs every pending teardown, newest first; concurrent callers share one drain. Returns the failures. */
  run(): Promise<Error[]> {
    this.draining ??= (async () => {
      const failures: Error[] = [];
      while (this.stack.length > 0) {
        const { label, fn } = this.stack.pop()!;
        try {
          await fn();
        } catch (err) {
          failures.push(new Error(`${label}: ${(err as Error)?.message ?? String(err)}`));
        }
      }
      this.draining = undefined;
      return failures;
    })();
    return this.draining;
  }
}
