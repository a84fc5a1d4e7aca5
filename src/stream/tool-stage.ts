import { execa } from 'execa';
import { ValidationError } from '../core/errors.js';

/** A filtering tool (zstd, pigz…) as a stream stage: its failure fails the pipeline it is in. */
export function toolStage(cmd: string, args: string[]): NodeJS.ReadWriteStream {
  const child = execa(cmd, args, { buffer: false, stderr: 'pipe' });
  child.catch(() => {});
  return child.duplex();
}

/** zstd on every core at `level`, as a stream stage. */
export function zstdStage(level: number): NodeJS.ReadWriteStream {
  return toolStage('zstd', ['-T0', `-${level}`, '-q', '-c']);
}

/** What an exporter that writes zstd checks in `validate`: the tool is there. */
export async function requireZstd(output: string): Promise<void> {
  if ((await execa('zstd', ['--version'], { reject: false })).failed)
    throw new ValidationError(`${output} needs the zstd command`, { hint: 'apt-get install zstd (make setup does)' });
}
