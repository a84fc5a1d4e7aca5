import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, type Dirent } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, fileSha256, sha256 } from '../core/digest.js';
import { bareonPackageDir } from '../core/version.js';
import { ManifestSchema, type Artifact, type Objects } from '../objects/index.js';

/** Bumped when the rules that turn `docker export` into a root filesystem change. */
const EXPORT_RULES_VERSION = 4;

let code: string | undefined;

/**
 * A digest of bareon's compiled code (dist/), so that an artifact made by other code is never
 * reused, whatever the version number says: a development build counts as a new tool.
 */
export function codeDigest(): string {
  if (code === undefined) {
    const dist = path.join(bareonPackageDir(), 'dist');
    const h = createHash('sha256');
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(dist, { recursive: true, withFileTypes: true });
    } catch {
      // running from the TypeScript sources (the unit tests): no compiled code to name
    }
    const files = entries
      .filter((e) => e.isFile() && e.name.endsWith('.js'))
      .map((e) => path.join(e.parentPath, e.name))
      .sort();
    for (const f of files)
      h.update(`${path.relative(dist, f)}\0`)
        .update(readFileSync(f))
        .update('\0');
    code = files.length ? h.digest('hex') : '';
  }
  return code;
}

/** Digest of an artifact's inputs (root filesystem image, format, options…), recorded in the manifest. */
export function artifactInputs(parts: Record<string, unknown>): string {
  // the export rules (hygiene included) and the code that applies them are part of every recipe
  return sha256(canonicalJson({ ...parts, exportRules: EXPORT_RULES_VERSION, code: codeDigest() }));
}

/**
 * The artifact of the previous build in `outDir` when it was made from the same inputs and the file
 * is still intact (same size and sha256): like make, an unchanged build does not redo it. Its
 * package list is carried over, as the root filesystem is the same image.
 */
export async function reusableArtifact(
  objects: Objects,
  format: string,
  inputs: string,
): Promise<Artifact | undefined> {
  const { outDir, profile } = objects;
  if (!outDir || !profile) return undefined;
  const text = await readFile(path.join(outDir, `${profile.name}.manifest.json`), 'utf8').catch(() => undefined);
  const manifest = text ? ManifestSchema.safeParse(JSON.parse(text)) : undefined;
  if (!manifest?.success) return undefined;
  const previous = manifest.data.artifacts.find((a) => a.format === format && a.inputs === inputs);
  if (!previous) return undefined;
  const file = path.join(outDir, previous.uri);
  const st = await stat(file).catch(() => undefined);
  if (!st || st.size !== previous.size || (await fileSha256(file)) !== previous.sha256) return undefined;
  if (objects.rootfs && !objects.rootfs.packages) objects.rootfs.packages = manifest.data.packages;
  return previous;
}
