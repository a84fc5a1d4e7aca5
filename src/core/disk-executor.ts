import type { CommandResult } from './tool-error.js';

/**
 * Where disk tools run: inside the toolbox container for images (no host privileges), or on the
 * host for real disks. Paths are as the executor sees them.
 */
export interface DiskExecutor {
  /** Runs a command; a non-zero exit throws a ToolError naming the step, the command and its output tail. */
  run(
    cmd: string[],
    opts?: { step?: string; onLine?: (line: string) => void; allowFailure?: boolean; input?: string },
  ): Promise<CommandResult>;
  writeFile(path: string, data: Buffer, mode?: number): Promise<void>;
  readFile(path: string): Promise<Buffer>;
}
