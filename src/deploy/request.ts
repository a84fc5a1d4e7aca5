import { ValidationError } from '../core/errors.js';
import type { DeploySource, DiskTarget, Objects } from '../objects/index.js';

/** The deploy source of the run, or a ValidationError naming the plugin that needs one. */
export function requireSource(objects: Objects, who: string): DeploySource {
  if (!objects.source || !objects.deploy)
    throw new ValidationError(`${who}: needs a source to deploy (bareon-deploy SOURCE TARGET)`);
  const { source, deploy } = objects;
  if (deploy.verify && !source.sha256 && !source.sha512) {
    throw new ValidationError(`source ${source.uri} has no checksum to verify against`, {
      hint: 'give --checksum sha256:HEX, deploy the <name>.manifest.json that lists it, or --no-verify to write unverified',
    });
  }
  return source;
}

/** The one target disk of a deploy. */
export function deployTarget(objects: Objects, who: string): DiskTarget {
  const target = objects.disks?.[0];
  if (!target || target.kind === 'image')
    throw new ValidationError(`${who}: needs a target disk (a block device or an image file)`);
  return target;
}
