import type { Artifact, Manifest } from '../objects/artifact.js';
import type { DeploySource } from '../objects/deploy.js';
import { bmapCandidates } from '../stream/bmap.js';
import { isUrl } from './open.js';

/**
 * The block map a manifest lists for its raw artifact (format "bmap", named as bmaptool looks for
 * it: `disk.raw.bmap` or `disk.bmap`), with the sha256 the manifest records; false for any other
 * artifact, a remote one, or none listed: a manifest's raw image is never paired with a map it does
 * not pin. `locate` resolves an artifact uri as the manifest's own artifacts are resolved.
 */
export function listedBmap(
  manifest: Manifest,
  artifact: Artifact,
  manifestUri: string,
  locate: (uri: string) => string,
): DeploySource['bmap'] {
  if (artifact.format !== 'raw') return false;
  const names = bmapCandidates(artifact.uri);
  const listed = manifest.artifacts.find((a) => a.format === 'bmap' && names.includes(a.uri));
  if (!listed) return false;
  const file = locate(listed.uri);
  return isUrl(file) ? false : { file, from: `manifest ${manifestUri}`, sha256: listed.sha256 };
}
