import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory of bareon's own package.json. */
export function bareonPackageDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('bareon package.json not found');
    dir = parent;
  }
  return dir;
}

/** bareon's own version, from its package.json. */
export const VERSION: string = JSON.parse(readFileSync(path.join(bareonPackageDir(), 'package.json'), 'utf8')).version;
