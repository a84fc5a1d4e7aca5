import type { DiskExecutor } from '../core/disk-executor.js';

/** qemu-img image options for a raw window (`offset=`, `size=`) into a qcow2, its format always given, never probed. */
export function qcow2Window(file: string, window: string): string {
  return `driver=raw,${window},file.driver=qcow2,file.file.filename=${file}`;
}

/** Converts the first `bytes` of the disk inside a qcow2 to the raw file `out` (qemu-img; the file must be local). */
export async function readQcow2Head(
  ex: DiskExecutor,
  file: string,
  bytes: number,
  out: string,
  step: string,
): Promise<Buffer> {
  await ex.run(['qemu-img', 'convert', '--image-opts', qcow2Window(file, `size=${bytes}`), '-O', 'raw', out], { step });
  return ex.readFile(out);
}
