import { stat } from 'node:fs/promises';
import { ValidationError } from '../../core/errors.js';
import type { DiskMatch } from '../../objects/disk-match.js';

/**
 * The deploy target: TARGET as given, or the one disk that `--target-hint`s (or the layout's
 * `match:`) select among this machine's disks. A block device given as TARGET must agree with the
 * layout's `match:`.
 */
export async function resolveTarget(
  target: string | undefined,
  hintFlags: string[],
  layoutMatch: DiskMatch | undefined,
  layoutFile?: string,
  diskIndex = 0,
): Promise<{ path: string; how?: string }> {
  if (target && hintFlags.length) throw new ValidationError('give TARGET or --target-hint, not both');
  // a TARGET with no hints to check it against needs neither the hints' schema (zod) nor the disk inventory
  if (target && !layoutMatch) return { path: target };
  const [{ matchesHints, parseHintFlags, selectDisk }, { listDisks }] = await Promise.all([
    import('../../objects/disk-match.js'),
    import('../../host/disk-inventory.js'),
  ]);
  const hints = hintFlags.length ? parseHintFlags(hintFlags) : layoutMatch;
  if (typeof hints === 'string') throw new ValidationError(hints);
  if (!target) {
    if (!hints)
      throw new ValidationError(
        "no target: give TARGET (a disk or an image file), --target-hint KEY=VALUE, or match: on the layout's disk",
      );
    const chosen = selectDisk(hints, await listDisks());
    if (typeof chosen === 'string')
      throw new ValidationError(
        `${hintFlags.length ? '--target-hint' : `${layoutFile}: disks[${diskIndex}].match`}: ${chosen}`,
        { hint: '`bareon disks` lists the disks with the attributes hints can name' },
      );
    return {
      path: chosen.path,
      how: `${chosen.path}, chosen by ${hintFlags.length ? '--target-hint' : "the layout's match:"}`,
    };
  }
  if (layoutMatch && (await stat(target).catch(() => undefined))?.isBlockDevice()) {
    const disk = (await listDisks({ all: true })).find((d) => d.path === target);
    if (disk && !matchesHints(disk, layoutMatch)) {
      throw new ValidationError(`${target} does not match ${layoutFile}: disks[${diskIndex}].match`, {
        hint: "check the target, or the hints (`bareon disks` lists each disk's attributes)",
      });
    }
  }
  return { path: target };
}
