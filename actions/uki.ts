import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BareonError, type DiskExecutor, type RootTree, ValidationError } from 'bareon/plugin';

/** systemd's EFI stub in the root filesystem (Debian's systemd-boot-efi). */
const STUB = 'usr/lib/systemd/boot/efi/linuxx64.efi.stub';

/** Where the sections after the stub's own may start, and how they are aligned (PE SectionAlignment of 4 KiB). */
function peImageEnd(stub: Buffer): number {
  const pe = stub.readUInt32LE(0x3c);
  if (stub.toString('latin1', pe, pe + 4) !== 'PE\0\0')
    throw new BareonError(`bootloader: uki: /${STUB} is not a PE image`);
  const optional = pe + 24;
  const magic = stub.readUInt16LE(optional);
  if (magic !== 0x20b) throw new BareonError(`bootloader: uki: /${STUB} is not a 64-bit PE image`);
  const imageBase = Number(stub.readBigUInt64LE(optional + 24));
  const sizeOfImage = stub.readUInt32LE(optional + 56);
  return imageBase + sizeOfImage;
}

const align = (n: number, to = 0x10000) => Math.ceil(n / to) * to;

export interface UkiParts {
  /** The kernel, relative to the root tree (boot/vmlinuz-VERSION). */
  kernel: string;
  initrd?: string;
  cmdline: string;
  /** The db key and certificate (PEM, host paths) that sign it; unsigned without. */
  sign?: { key: string; cert: string };
}

/**
 * Builds a unified kernel image in `scratch` from the root filesystem's stub, kernel, initramfs and
 * os-release and the command line: each becomes a PE section after the stub's own (.osrel,
 * .cmdline, .linux, .initrd), as systemd-stub finds them. With `sign`, sbsign signs it. Returns its
 * path as the executor sees it.
 */
export async function buildUki(
  root: RootTree,
  ex: DiskExecutor,
  scratch: string,
  parts: UkiParts,
  step: (what: string) => { step: string; onLine: (line: string) => void },
): Promise<string> {
  const stub = await root.readFile(STUB).catch(() => {
    throw new BareonError(`bootloader: uki: the root filesystem has no /${STUB}`, {
      exitCode: 2,
      hint: 'add systemd-boot-efi to the profile’s packages',
    });
  });
  const sections: [name: string, data: Buffer][] = [
    ['.osrel', await root.readFile('usr/lib/os-release')],
    ['.cmdline', Buffer.from(`${parts.cmdline.trim()}\0`)],
    ['.linux', await root.readFile(parts.kernel)],
    ...(parts.initrd ? [['.initrd', await root.readFile(parts.initrd)] as [string, Buffer]] : []),
  ];
  await ex.writeFile(`${scratch}/uki-stub.efi`, stub);
  const args = ['objcopy'];
  let vma = align(peImageEnd(stub));
  for (const [name, data] of sections) {
    const file = `${scratch}/uki${name}`;
    await ex.writeFile(file, data);
    args.push('--add-section', `${name}=${file}`, '--change-section-vma', `${name}=0x${vma.toString(16)}`);
    vma = align(vma + data.length);
  }
  const unsigned = `${scratch}/uki-unsigned.efi`;
  await ex.run([...args, `${scratch}/uki-stub.efi`, unsigned], step('objcopy: assemble the unified kernel image'));
  if (!parts.sign) return unsigned;
  const key = `${scratch}/uki-db.key`;
  const cert = `${scratch}/uki-db.crt`;
  await ex.writeFile(key, await readFile(parts.sign.key));
  await ex.writeFile(cert, await readFile(parts.sign.cert));
  const signed = `${scratch}/uki.efi`;
  try {
    await ex.run(
      ['sbsign', '--key', key, '--cert', cert, '--output', signed, unsigned],
      step(`sbsign with ${path.basename(parts.sign.cert)}`),
    );
  } finally {
    await ex.run(['rm', '-f', key], { allowFailure: true });
  }
  return signed;
}

/**
 * A deploy builds the uki on this host: objcopy (binutils) and, to sign it, sbsign (sbsigntool)
 * must be here before anything is written. (Image builds run them in the toolbox, which has both.)
 */
export async function requireUkiTools(sign: boolean): Promise<void> {
  const tools: [string, string][] = [
    ['objcopy', 'binutils'],
    ...(sign ? [['sbsign', 'sbsigntool'] as [string, string]] : []),
  ];
  for (const [tool, pkg] of tools) {
    const found = await new Promise<boolean>((resolve) =>
      execFile(tool, ['--version'], (err) => resolve(!err || (err as NodeJS.ErrnoException).code !== 'ENOENT')),
    );
    if (!found)
      throw new ValidationError(`bootloader: uki: ${tool} is not installed on this host`, {
        hint: `apt-get install ${pkg}; nothing was written`,
      });
  }
}
