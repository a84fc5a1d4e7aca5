import { BareonError } from '../../core/errors.js';

const SECTOR = 2048;

/** A file read out of an ISO 9660 image: its path (no leading slash) and bytes. */
export interface IsoFile {
  path: string;
  data: Buffer;
}

interface Extent {
  lba: number;
  size: number;
}

/**
 * The files of a small ISO 9660 image held in memory, such as the config drive Ironic sends
 * (genisoimage -J -r, volume config-2). Names come from the Joliet tree when there is one (full
 * Unicode names), else from the primary tree with its ";1" versions dropped. Rock Ridge and
 * multi-extent files are not read; neither is needed for a config drive.
 */
export function readIso(image: Buffer, limits = { files: 1000, depth: 16 }): IsoFile[] {
  const bad = (why: string) =>
    new BareonError(`config drive: not an ISO 9660 image Ironic would send (${why})`, {
      hint: 'Ironic sends the config drive as a gzipped, base64-encoded ISO 9660 image (label config-2)',
    });
  let primary: Extent | undefined;
  let joliet: Extent | undefined;
  for (let s = 16; s < 16 + 64; s++) {
    const at = s * SECTOR;
    if (at + SECTOR > image.length) throw bad('too short');
    const d = image.subarray(at, at + SECTOR);
    if (d.toString('latin1', 1, 6) !== 'CD001') throw bad(`no volume descriptor at sector ${s}`);
    const type = d[0];
    if (type === 255) break;
    const root = { lba: d.readUInt32LE(156 + 2), size: d.readUInt32LE(156 + 10) };
    if (type === 1) primary = root;
    // a supplementary descriptor with a UCS-2 escape sequence is Joliet
    if (type === 2 && d[88] === 0x25 && d[89] === 0x2f && [0x40, 0x43, 0x45].includes(d[90])) joliet = root;
  }
  const root = joliet ?? primary;
  if (!root) throw bad('no primary volume descriptor');
  const files: IsoFile[] = [];
  const name = (raw: Buffer): string => {
    if (joliet) {
      const swapped = Buffer.from(raw);
      swapped.swap16();
      return swapped.toString('utf16le').replace(/;\d+$/, '');
    }
    return raw.toString('latin1').replace(/;\d+$/, '').replace(/\.$/, '');
  };
  const walk = (dir: Extent, prefix: string, depth: number) => {
    if (depth > limits.depth) throw bad('directories nested too deep');
    const end = dir.lba * SECTOR + dir.size;
    if (end > image.length) throw bad('a directory lies past the end of the image');
    let at = dir.lba * SECTOR;
    while (at < end) {
      const len = image[at];
      if (len === 0) {
        // records never cross a sector: the rest of this one is padding
        at = (Math.floor(at / SECTOR) + 1) * SECTOR;
        continue;
      }
      if (len < 34 || at + len > end) throw bad('a directory record is malformed');
      const rec = image.subarray(at, at + len);
      at += len;
      const nameLen = rec[32];
      const raw = rec.subarray(33, 33 + nameLen);
      if (nameLen === 1 && (raw[0] === 0 || raw[0] === 1)) continue; // "." and ".."
      const ext = { lba: rec.readUInt32LE(2), size: rec.readUInt32LE(10) };
      const full = prefix + name(raw);
      if (rec[25] & 0x02) walk(ext, `${full}/`, depth + 1);
      else {
        if (files.length >= limits.files) throw bad(`more than ${limits.files} files`);
        const start = ext.lba * SECTOR;
        if (start + ext.size > image.length) throw bad(`${full} lies past the end of the image`);
        files.push({ path: full, data: Buffer.from(image.subarray(start, start + ext.size)) });
      }
    }
  };
  walk(root, '', 0);
  return files;
}
