import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Writes an out-of-tree plugin package (package.json + plain JS modules) into a new temp dir.
 * `modules` maps a file name to its source; `entryPoints` is the package.json declaration.
 */
export async function writePluginPackage(spec: {
  name: string;
  version?: string;
  apiVersion?: number;
  entryPoints: Record<string, Record<string, string>>;
  modules: Record<string, string>;
  dir?: string;
}): Promise<string> {
  const dir = spec.dir ?? path.join(await mkdtemp(path.join(tmpdir(), 'bareon-plugin-')), spec.name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'package.json'),
    JSON.stringify(
      {
        name: spec.name,
        version: spec.version ?? '1.0.0',
        type: 'module',
        bareon: { apiVersion: spec.apiVersion ?? 1, entryPoints: spec.entryPoints },
      },
      null,
      2,
    ),
  );
  for (const [file, source] of Object.entries(spec.modules)) await writeFile(path.join(dir, file), source);
  return dir;
}
