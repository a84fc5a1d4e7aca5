import { detectDocumentKind, loadLayout, loadProfile } from '../../objects/index.js';

/** Validates a profile or a layout file; returns a one-line summary. */
export async function validateFile(file: string): Promise<string> {
  const kind = await detectDocumentKind(file);
  if (kind === 'layout') {
    const layout = await loadLayout(file);
    const parts = layout.disks.reduce((n, d) => n + d.partitions.length, 0);
    return `${file}: valid layout (${layout.disks.length} disk(s), ${parts} partition(s))`;
  }
  const { profile, layoutFile } = await loadProfile(file);
  return `${file}: valid profile "${profile.name}" (builder ${profile.builder}, outputs ${profile.outputs.map((o) => (typeof o === 'string' ? o : o.format)).join(', ')}${layoutFile ? `, layout ${layoutFile}` : ''})`;
}
