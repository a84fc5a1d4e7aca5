import { createHash, randomBytes } from 'node:crypto';
import type { Filesystem, Layout } from '../objects/layout.js';

function bytesFor(seed: string | undefined, purpose: string, n: number): Buffer {
  return seed === undefined
    ? randomBytes(n)
    : createHash('sha256').update(`${seed}\0${purpose}`).digest().subarray(0, n);
}

/** An RFC 4122 version-4-shaped UUID, random or derived from `seed` and `purpose`. */
export function makeUuid(seed: string | undefined, purpose: string): string {
  const b = Buffer.from(bytesFor(seed, purpose, 16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A FAT volume id "ABCD-1234". */
export function makeVolumeId(seed: string | undefined, purpose: string): string {
  const h = bytesFor(seed, purpose, 4).toString('hex').toUpperCase();
  return `${h.slice(0, 4)}-${h.slice(4)}`;
}

/**
 * Fills in every partition and filesystem identifier the layout leaves open, so that fstab, the
 * bootloader and the manifest agree on them before anything is written. Deterministic with `seed`.
 */
export function assignIdentifiers(layout: Layout): Layout {
  for (const disk of layout.disks) {
    disk.partitions.forEach((p, i) => {
      const purpose = `${disk.id}/${i}`;
      p.uuid ??= makeUuid(layout.seed, `${purpose}/partition`);
      if (p.fs && !p.fs.uuid)
        p.fs.uuid =
          p.fs.type === 'vfat' ? makeVolumeId(layout.seed, `${purpose}/fs`) : makeUuid(layout.seed, `${purpose}/fs`);
    });
  }
  const fsUuid = (fs: Filesystem | undefined, purpose: string) => {
    if (fs && !fs.uuid)
      fs.uuid = fs.type === 'vfat' ? makeVolumeId(layout.seed, purpose) : makeUuid(layout.seed, purpose);
  };
  for (const r of layout.raids ?? []) fsUuid(r.fs, `raid/${r.id}/fs`);
  for (const g of layout.volume_groups ?? []) for (const lv of g.volumes) fsUuid(lv.fs, `vg/${g.id}/${lv.name}/fs`);
  return layout;
}
