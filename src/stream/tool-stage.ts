import { execa } from 'execa';

/** A filtering tool (zstd, pigz…) as a stream stage: its failure fails the pipeline it is in. */
export function toolStage(cmd: string, args: string[]): NodeJS.ReadWriteStream {
  const child = execa(cmd, args, { buffer: false, stderr: 'pipe' });
  child.catch(() => {});
  return child.duplex();
}
