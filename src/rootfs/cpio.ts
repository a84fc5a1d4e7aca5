/** One member of a newc cpio archive. */
export interface CpioEntry {
  name: string;
  /** File contents; absent for a directory. */
  data?: Buffer;
  mode: number;
}

/** The header fields of a newc member, in the order they are written. */
export interface NewcHeader {
  ino: number;
  /** File type and permission bits (S_IFREG | 0644…). */
  mode: number;
  uid?: number;
  gid?: number;
  nlink?: number;
  mtime?: number;
  size: number;
  rdevMajor?: number;
  rdevMinor?: number;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** A newc member header with its name, padded so that the data starts on a 4-byte boundary. */
export function newcHeader(name: string, h: NewcHeader): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [
    h.ino,
    h.mode,
    h.uid ?? 0,
    h.gid ?? 0,
    h.nlink ?? 1,
    h.mtime ?? 0,
    h.size,
    0,
    0,
    h.rdevMajor ?? 0,
    h.rdevMinor ?? 0,
    nameBytes.length,
    0,
  ];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii');
  return Buffer.concat([header, nameBytes, Buffer.alloc(pad4(header.length + nameBytes.length))]);
}

/** The zeros after `length` bytes of member data. */
export function newcDataPadding(length: number): Buffer {
  return Buffer.alloc(pad4(length));
}

/** The member that ends an archive. */
export const NEWC_TRAILER = newcHeader('TRAILER!!!', { ino: 0, mode: 0, nlink: 1, size: 0 });

/**
 * An uncompressed newc cpio archive, the format the kernel unpacks an initramfs from. The kernel
 * unpacks archives that follow each other, later members replacing earlier ones, so appending one
 * (at a 4-byte boundary) adds files to an initramfs without rebuilding it.
 */
export function newcArchive(entries: CpioEntry[], mtime = 0): Buffer {
  const parts = entries.flatMap((e, i) => {
    const data = e.data ?? Buffer.alloc(0);
    const mode = e.data ? 0o100000 | e.mode : 0o040000 | e.mode;
    return [newcHeader(e.name, { ino: i + 1, mode, mtime, size: data.length }), data, newcDataPadding(data.length)];
  });
  parts.push(NEWC_TRAILER);
  return Buffer.concat(parts);
}

/** Zero bytes that bring an archive of `length` bytes to the 4-byte boundary the next one must start on. */
export function alignmentPadding(length: number): Buffer {
  return Buffer.alloc(pad4(length));
}
