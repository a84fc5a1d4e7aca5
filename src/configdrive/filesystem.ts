import path from 'node:path';
import { shq } from '../core/shell.js';
import type { DiskExecutor } from '../core/disk-executor.js';
import type { ConfigDriveFs } from '../objects/configdrive.js';
import type { DriveFile } from './content.js';

/**
 * Makes the config drive's filesystem inside `disk` at `offset` and fills it, with no mount (this
 * kernel may have neither vfat nor iso9660): vfat with mkfs.vfat --offset and mtools, iso9660 with
 * xorriso into a scratch image that is then copied into the partition.
 */
export async function writeDriveFilesystem(
  ex: DiskExecutor,
  disk: string,
  part: { offset: number; size: number },
  fs: ConfigDriveFs,
  label: string,
  files: DriveFile[],
  scratch: string,
): Promise<void> {
  const staging = path.join(scratch, 'configdrive');
  await ex.run(['rm', '-rf', staging]);
  for (const f of files) {
    await ex.run(['mkdir', '-p', path.dirname(path.join(staging, f.path))]);
    await ex.writeFile(path.join(staging, f.path), f.data);
  }
  const step = { step: `config drive (${fs}, label ${label})` };
  if (fs === 'vfat') {
    await ex.run(
      [
        'mkfs.vfat',
        '-F',
        '16',
        '-n',
        label.toUpperCase(),
        // -I: inside a partitioned block device, which mkfs.vfat otherwise refuses to touch
        '-I',
        `--offset=${part.offset / 512}`,
        disk,
        String(part.size / 1024),
      ],
      step,
    );
    await ex.run(
      [
        'sh',
        '-c',
        `cd ${shq(staging)} && MTOOLS_SKIP_CHECK=1 mcopy -s -p -Q -i ${shq(`${disk}@@${part.offset}`)} ./* ::/`,
      ],
      step,
    );
  } else {
    const iso = path.join(scratch, 'configdrive.iso');
    await ex.run(['xorriso', '-as', 'mkisofs', '-quiet', '-V', label, '-J', '-R', '-o', iso, staging], step);
    await ex.run(
      [
        'dd',
        `if=${iso}`,
        `of=${disk}`,
        'bs=1M',
        `seek=${part.offset}`,
        'oflag=seek_bytes',
        'conv=notrunc,fsync',
        'status=none',
      ],
      step,
    );
  }
}
