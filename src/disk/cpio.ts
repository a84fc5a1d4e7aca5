/** One member of a newc cpio archive. */
export interface CpioEntry {
  name: string;
  /** File contents; absent for a directory. */
  data?: Buffer;
  mode: number;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function member(name: string, mode: number, data: Buffer, ino: number, mtime: number): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [ino, mode, 0, 0, 1, mtime, data.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii');
  return Buffer.concat([header, nameBytes, Buffer.alloc(pad4(header.length + nameBytes.length)), data, Buffer.alloc(pad4(data.length))]);
}

/**
 * An uncompressed newc cpio archive, the format the kernel unpacks an initramfs from. The kernel
 * unpacks archives that follow each other, later members replacing earlier ones, so appending one
 * (at a 4-byte boundary) adds files to an initramfs without rebuilding it.
 */
export function newcArchive(entries: CpioEntry[], mtime = 0): Buffer {
  const parts = entries.map((e, i) => member(e.name, e.data ? 0o100000 | e.mode : 0o040000 | e.mode, e.data ?? Buffer.alloc(0), i + 1, mtime));
  parts.push(member('TRAILER!!!', 0, Buffer.alloc(0), 0, 0));
  return Buffer.concat(parts);
}

/** Zero bytes that bring an archive of `length` bytes to the 4-byte boundary the next one must start on. */
export function alignmentPadding(length: number): Buffer {
  return Buffer.alloc(pad4(length));
}
