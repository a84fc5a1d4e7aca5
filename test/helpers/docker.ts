import { execa } from 'execa';
import { RUN_LABEL } from '../../src/docker/engine.js';

/** Ids of containers any bareon run left behind. */
export async function bareonContainers(): Promise<string[]> {
  const { stdout } = await execa('docker', ['ps', '-aq', '--filter', `label=${RUN_LABEL}`]);
  return stdout.split('\n').filter(Boolean);
}

/** Paths in `docker export` of a fresh container from `image` (the raw export, artifacts included). */
export async function dockerExportList(image: string): Promise<string[]> {
  const { stdout: id } = await execa('docker', ['create', image, '/bin/true']);
  try {
    const { stdout } = await execa('sh', ['-c', `docker export ${id} | tar -t`], { maxBuffer: 1 << 28 });
    return stdout.split('\n').filter(Boolean);
  } finally {
    await execa('docker', ['rm', '-f', id]);
  }
}
