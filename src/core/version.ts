import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bareonPackageDir } from './plugins/discovery.js';

/** bareon's own version, from its package.json. */
export const VERSION: string = JSON.parse(readFileSync(path.join(bareonPackageDir(), 'package.json'), 'utf8')).version;
