import { BareonError } from '../src/core/errors.js';
import { definePlugin } from '../src/core/plugins/types.js';
import { SECTOR } from '../src/disk/geometry.js';
import { embedGrubBios, MBR_CODE_BYTES } from '../src/disk/grub-bios.js';
import { checkBootloader, findPartitions, rootPartition } from '../src/disk/layout-checks.js';
import { disksWithTargets, requireLayout } from '../src/disk/targets.js';
import type { Bootloader, Layout, Partition } from '../src/objects/layout.js';

const GRUB_FS_MODULE: Record<string, string> = { ext2: 'ext2', ext3: 'ext2', ext4: 'ext2', xfs: 'xfs', btrfs: 'btrfs' };

/** Where the kernel and grub's files live: the /boot partition when there is one, else the root. */
export function bootPartition(layout: Layout): { partition: Partition; prefix: string } {
  const [boot] = findPartitions(layout, (p) => p.mount === '/boot');
  return boot ? { partition: boot.partition, prefix: '' } : { partition: rootPartition(layout).partition, prefix: '/boot' };
}

/** grub.cfg: serial and screen consoles, root by filesystem UUID, the profile's command line. */
export function grubConfig(opts: { layout: Layout; bootloader: Bootloader; kernel: string; initrd?: string; title: string }): string {
  const { partition: boot, prefix } = bootPartition(opts.layout);
  const root = rootPartition(opts.layout).partition;
  const table = opts.layout.disks.find((d) => d.partitions.includes(boot))?.table === 'msdos' ? 'part_msdos' : 'part_gpt';
  return [
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    `set timeout=${opts.bootloader.timeout}`,
    'set default=0',
    'if [ "$grub_platform" = efi ]; then insmod efi_gop; fi',
    `insmod ${table}`,
    `insmod ${GRUB_FS_MODULE[boot.fs!.type] ?? 'ext2'}`,
    `search --no-floppy --fs-uuid --set=root ${boot.fs!.uuid}`,
    `menuentry '${opts.title.replace(/'/g, '')}' {`,
    `  linux ${prefix}/${opts.kernel} root=UUID=${root.fs!.uuid} ro ${opts.bootloader.cmdline}`.trimEnd(),
    ...(opts.initrd ? [`  initrd ${prefix}/${opts.initrd}`] : []),
    '}',
    '',
  ].join('\n');
}

/** Newest-version-last sort of "vmlinuz-6.1.0-9-amd64"-style names. */
const byVersion = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/**
 * GRUB for BIOS and UEFI, both at once for hybrid images. Writes grub.cfg and grub's modules into
 * the root tree, BOOTX64.EFI at the ESP's removable path, and the BIOS boot code into the MBR and
 * the bios_grub partition (or the gap after the MBR on msdos disks).
 */
export default definePlugin({
  summary: 'installs GRUB: grub-bios (core image in bios_grub or the MBR gap) and grub-efi (EFI/BOOT/BOOTX64.EFI)',
  validate(objects) {
    const layout = requireLayout(objects, 'bootloader');
    if (!layout.bootloader) throw new BareonError(`${objects.layoutFile ?? 'layout'}: bootloader: missing (kind: [grub-bios, grub-efi])`, { exitCode: 2 });
    checkBootloader(layout, objects.layoutFile ?? objects.profileFile);
  },
  async run(ctx) {
    const layout = requireLayout(ctx.objects, 'bootloader');
    const bootloader = layout.bootloader!;
    const rootDisk = layout.disks[rootPartition(layout).disk];
    const { target } = disksWithTargets(ctx.objects, 'bootloader').find((d) => d.disk === rootDisk)!;
    const ex = target.executor;
    const tree = await target.rootDir();
    const scratch = await target.scratchDir();
    const step = (what: string) => ({ step: `bootloader: ${what}`, onLine: ctx.log });

    const boot = (await ex.run(['ls', '-1', `${tree}/boot`], step('find the kernel'))).stdout.split('\n').filter(Boolean);
    const kernel = boot.filter((f) => f.startsWith('vmlinuz-')).sort(byVersion).pop();
    if (!kernel) throw new BareonError('bootloader: no /boot/vmlinuz-* in the root filesystem', { hint: 'set bootable: true in the profile to install a kernel' });
    const initrd = boot.find((f) => f === `initrd.img-${kernel.slice('vmlinuz-'.length)}`);
    const profileName = ctx.objects.profile?.name ?? 'Linux';
    await ex.writeFile(`${tree}/boot/grub/grub.cfg`, Buffer.from(grubConfig({ layout, bootloader, kernel, initrd, title: profileName })));

    const { partition: bootPart, prefix } = bootPartition(layout);
    const fsModule = GRUB_FS_MODULE[bootPart.fs!.type] ?? 'ext2';
    const partModule = rootDisk.table === 'msdos' ? 'part_msdos' : 'part_gpt';
    const early = `search --no-floppy --fs-uuid --set=root ${bootPart.fs!.uuid}\nset prefix=($root)${prefix}/grub\n`;
    await ex.writeFile(`${scratch}/bareon-grub-early.cfg`, Buffer.from(early));
    const mkimage = async (platform: 'i386-pc' | 'x86_64-efi', out: string, modules: string[]) => {
      const lib = `${tree}/usr/lib/grub/${platform}`;
      const present = await ex.run(['test', '-d', lib], { allowFailure: true });
      if (present.exitCode !== 0) {
        throw new BareonError(`bootloader: ${lib.slice(tree.length)} is missing from the root filesystem`, {
          hint: `install ${platform === 'i386-pc' ? 'grub-pc-bin' : 'grub-efi-amd64-bin'} in the image (bootable: true does)`,
        });
      }
      await ex.run(['cp', '-a', lib, `${tree}/boot/grub/`], step(`copy ${platform} modules`));
      await ex.run(['grub-mkimage', '-d', lib, '-O', platform, '-o', out, '-c', `${scratch}/bareon-grub-early.cfg`, '-p', `${prefix}/grub`, ...modules], step(`grub-mkimage ${platform}`));
    };

    if (bootloader.kind.includes('grub-efi')) {
      const esp = target.geometry?.partitions.find((p) => p.spec.type === 'esp');
      if (!esp?.spec.mount) throw new BareonError('bootloader: the esp needs a mount point (such as /boot/efi) to receive EFI/BOOT/BOOTX64.EFI');
      const modules = [partModule, fsModule, 'fat', 'search', 'search_fs_uuid', 'normal'];
      if (target.stagedRoot) {
        // image order: the ESP is made from the staged tree after this
        const efiDir = `${tree}${esp.spec.mount}/EFI/BOOT`;
        await ex.run(['mkdir', '-p', efiDir]);
        await mkimage('x86_64-efi', `${efiDir}/BOOTX64.EFI`, modules);
      } else {
        // deploy order: the ESP exists, and vfat is written with mtools (no vfat mount needed)
        await mkimage('x86_64-efi', `${scratch}/BOOTX64.EFI`, modules);
        const ref = await target.partition(esp.number);
        const img = `${ref.path}@@${ref.offset}`;
        await ex.run(['mmd', '-D', 's', '-i', img, '::/EFI', '::/EFI/BOOT'], { ...step('create EFI/BOOT on the esp'), allowFailure: true });
        await ex.run(['mcopy', '-o', '-i', img, `${scratch}/BOOTX64.EFI`, '::/EFI/BOOT/BOOTX64.EFI'], step('copy BOOTX64.EFI to the esp'));
      }
    }
    if (bootloader.kind.includes('grub-bios')) {
      await mkimage('i386-pc', `${scratch}/bareon-core.img`, ['biosdisk', partModule, fsModule, 'search', 'search_fs_uuid']);
      const biosGrub = target.geometry?.partitions.find((p) => p.spec.type === 'bios_grub');
      const coreSector = biosGrub ? biosGrub.start / SECTOR : 1;
      const room = biosGrub ? biosGrub.size / SECTOR : Math.min(...target.geometry!.partitions.map((p) => p.start)) / SECTOR - 1;
      const code = embedGrubBios(await ex.readFile(`${tree}/usr/lib/grub/i386-pc/boot.img`), await ex.readFile(`${scratch}/bareon-core.img`), coreSector, room);
      await ex.writeFile(`${scratch}/bareon-mbr.bin`, code.mbrCode);
      await ex.writeFile(`${scratch}/bareon-core.bin`, code.core);
      await ex.run(['dd', `if=${scratch}/bareon-mbr.bin`, `of=${target.path}`, `bs=${MBR_CODE_BYTES}`, 'count=1', 'conv=notrunc', 'status=none'], step('write the MBR boot code'));
      await ex.run(['dd', `if=${scratch}/bareon-core.bin`, `of=${target.path}`, `bs=${SECTOR}`, `seek=${coreSector}`, 'conv=notrunc', 'status=none'], step('write core.img'));
    }
    ctx.setTitle(`bootloader: ${bootloader.kind.join(' + ')}, kernel ${kernel.slice('vmlinuz-'.length)}`);
  },
});
