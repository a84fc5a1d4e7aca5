import { ValidationError } from '../core/errors.js';
import { lazyPackage } from '../core/lazy-package.js';

/** execa loads with the first tool started: importing the stream API does not load it. */
const execaPackage = lazyPackage<typeof import('execa')>('execa');

/** A filtering tool (zstd, pigz…) as a stream stage: its failure fails the pipeline it is in. */
export function toolStage(cmd: string, args: string[]): NodeJS.ReadWriteStream {
  const child = execaPackage().execa(cmd, args, { buffer: false, stderr: 'pipe' });
  child.catch(() => {});
  return child.duplex();
}

/** zstd on every core at `level`, as a stream stage. */
export function zstdStage(level: number): NodeJS.ReadWriteStream {
  return toolStage('zstd', ['-T0', `-${level}`, '-q', '-c']);
}

/** What an exporter that writes zstd checks in `validate`: the tool is there. */
export async function requireZstd(output: string): Promise<void> {
  if ((await execaPackage().execa('zstd', ['--version'], { reject: false })).failed)
    throw new ValidationError(`${output} needs the zstd command`, { hint: 'apt-get install zstd (make setup does)' });
}
