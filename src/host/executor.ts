import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ToolError, type CommandResult } from '../core/tool-error.js';
import type { DiskExecutor } from '../core/disk-executor.js';
import { LineTail } from '../stream/lines.js';

/** Runs disk tools on this machine (deploy onto block devices and image files); no Docker involved. */
export class HostExecutor implements DiskExecutor {
  /** Tools started and not yet exited: stopped by the signal, they may still be inside a write. */
  private readonly live = new Set<{ kill(signal: NodeJS.Signals): boolean } & PromiseLike<unknown>>();

  constructor(private readonly signal?: AbortSignal) {}

  /**
   * Resolves once every tool this executor started has exited: a teardown that clears what a tool
   * writes waits here, or the tool (sgdisk in the middle of writing a table when Ctrl-C came) could
   * write after it. A tool still running after `graceMs` is killed with SIGKILL.
   */
  async settled(graceMs = 10_000): Promise<void> {
    if (!this.live.size) return;
    const all = () => Promise.allSettled([...this.live]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    if ((await Promise.race([all(), late])) === 'late') for (const child of this.live) child.kill('SIGKILL');
    clearTimeout(timer);
    await all();
  }

  async run(
    cmd: string[],
    opts: { step?: string; onLine?: (line: string) => void; allowFailure?: boolean; input?: string } = {},
  ): Promise<CommandResult> {
    const tail = new LineTail(30);
    const { execa } = await import('execa'); // loaded by the first command: a deploy may run none
    const child = execa(cmd[0], cmd.slice(1), {
      reject: false,
      all: true,
      input: opts.input,
      stdin: opts.input === undefined ? 'ignore' : undefined,
      cancelSignal: this.signal,
      env: { LC_ALL: 'C', MTOOLS_SKIP_CHECK: '1' },
      maxBuffer: 64 * 1024 * 1024,
    });
    child.all?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        tail.push(line);
        opts.onLine?.(line);
      }
    });
    this.live.add(child);
    const r = await child.finally(() => this.live.delete(child));
    if (r.isCanceled) throw this.signal?.reason ?? new Error(`${cmd[0]}: cancelled`);
    const exitCode = r.exitCode ?? (r.failed ? 127 : 0);
    if (r.failed && r.exitCode === undefined && !opts.allowFailure)
      throw new ToolError(opts.step ?? 'host', cmd, 127, r.shortMessage ?? '');
    const result = { exitCode, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), tail: tail.toString() };
    if (exitCode !== 0 && !opts.allowFailure) throw new ToolError(opts.step ?? 'host', cmd, exitCode, result.tail);
    return result;
  }

  async writeFile(file: string, data: Buffer, mode = 0o644): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data, { mode });
  }

  readFile(file: string): Promise<Buffer> {
    return readFile(file);
  }
}
