import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ToolError, type CommandResult } from '../core/tool-error.js';
import type { DiskExecutor } from '../core/disk-executor.js';
import { LineTail } from '../stream/lines.js';

/** Runs disk tools on this machine (deploy onto block devices and image files); no Docker involved. */
export class HostExecutor implements DiskExecutor {
  constructor(private readonly signal?: AbortSignal) {}

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
    const r = await child;
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
