import type { Writable } from 'node:stream';

export type LogFormat = 'text' | 'json';

/** One line of `--log-format json`. */
export type RunEvent =
  | { event: 'started'; task: string }
  | { event: 'log'; task: string; line: string }
  | { event: 'progress'; task: string; bytes: number; total?: number; text: string }
  | { event: 'finished'; task: string; duration_ms: number; note?: string }
  | { event: 'failed'; task: string; duration_ms: number; error: string }
  | { event: 'warning'; text: string };

/** Where task events go besides the listr2 renderer: JSON lines, or nowhere. */
export class Reporter {
  constructor(
    readonly format: LogFormat,
    readonly tty: boolean,
    private readonly out: Writable = process.stdout,
  ) {}

  emit(event: RunEvent): void {
    if (this.format === 'json') this.out.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  }

  /** Prints a message that is not a task event (a dry-run plan, a summary). */
  print(text: string): void {
    if (this.format === 'json')
      this.out.write(`${JSON.stringify({ time: new Date().toISOString(), event: 'message', text })}\n`);
    else this.out.write(`${text}\n`);
  }

  /** A warning: a `warning` event under JSON (on stdout with the rest), else a line on stderr. */
  warn(text: string): void {
    if (this.format === 'json') this.emit({ event: 'warning', text });
    else process.stderr.write(`warning: ${text}\n`);
  }

  /** listr2 renderer for this format: bars on a TTY, plain lines otherwise, silence under JSON. */
  get renderer(): 'default' | 'simple' | 'silent' {
    if (this.format === 'json') return 'silent';
    return this.tty ? 'default' : 'simple';
  }

  /** How often progress is reported: smooth on a TTY, sparse in CI logs. */
  get progressIntervalMs(): number {
    return this.tty && this.format === 'text' ? 100 : 2000;
  }
}
