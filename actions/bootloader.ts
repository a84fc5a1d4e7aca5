import { onLayout } from './placement.js';
import {
  BareonError,
  definePlugin,
  rootTree,
  type Bootloader,
  type Disk,
  type Layout,
  layoutVolumes,
  volumeDisks,
  volumeStack,
  type Volume,
} from 'bareon/plugin';
import {
  SECTOR,
  embedGrubBios,
  MBR_CODE_BYTES,
  newestWithPrefix,
  checkBootloader,
  rootVolume,
  disksWithTargets,
  requireLayout,
  rootTarget,
} from 'bareon/disk';

const GRUB_FS_MODULE: Record<string, string> = { ext2: 'ext2', ext3: 'ext2', ext4: 'ext2', xfs: 'xfs', btrfs: 'btrfs' };

/** Where the kernel and grub's files live: the /boot volume when there is one, else the root. */
export function bootVolume(layout: Layout): { volume: Volume; prefix: string } {
  const boot = layoutVolumes(layout).find((v) => v.mount === '/boot');
  return boot ? { volume: boot, prefix: '' } : { volume: rootVolume(layout), prefix: '/boot' };
}

/** GRUB modules that read the boot volume: its table, md and LVM under it, its filesystem. */
export function grubModules(layout: Layout): string[] {
  const { volume } = bootVolume(layout);
  const { raids, vgs } = volumeStack(layout, volume);
  const tables = [
    ...new Set(volumeDisks(layout, volume).map((d) => (layout.disks[d].table === 'msdos' ? 'part_msdos' : 'part_gpt'))),
  ];
  return [
    ...tables,
    ...(raids.length ? ['mdraid1x'] : []),
    ...(vgs.length ? ['lvm'] : []),
    GRUB_FS_MODULE[volume.fs!.type] ?? 'ext2',
  ];
}

/** grub.cfg: serial and screen consoles, root by filesystem UUID, the profile's command line. */
export function grubConfig(opts: {
  layout: Layout;
  bootloader: Bootloader;
  kernel: string;
  initrd?: string;
  title: string;
}): string {
  const { volume: boot, prefix } = bootVolume(opts.layout);
  const root = rootVolume(opts.layout);
  return [
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    `set timeout=${opts.bootloader.timeout}`,
    'set default=0',
    'if [ "$grub_platform" = efi ]; then insmod efi_gop; fi',
    ...grubModules(opts.layout).map((m) => `insmod ${m}`),
    `search --no-floppy --fs-uuid --set=root ${boot.fs!.uuid}`,
    `menuentry '${opts.title.replace(/'/g, '')}' {`,
    `  linux ${prefix}/${opts.kernel} root=UUID=${root.fs!.uuid} ro ${opts.bootloader.cmdline}`.trimEnd(),
    ...(opts.initrd ? [`  initrd ${prefix}/${opts.initrd}`] : []),
    '}',
    '',
  ].join('\n');
}

/** The disks that get boot code: bootloader.disks, else every disk the boot volume is built from. */
export function bootDisks(layout: Layout): Disk[] {
  const ids = layout.bootloader?.disks;
  if (ids) return layout.disks.filter((d) => ids.includes(d.id));
  return volumeDisks(layout, bootVolume(layout).volume).map((d) => layout.disks[d]);
}

/**
 * GRUB for BIOS and UEFI, both at once for hybrid images. Writes grub.cfg and grub's modules into
 * the root tree, BOOTX64.EFI at the ESP's removable path, and the BIOS boot code into the MBR and
 * the bios_grub partition (or the gap after the MBR on msdos disks).
 */
export default definePlugin({
  reads: ['layout', 'layoutFile', 'profile', 'profileFile', 'disks'],
  summary: 'installs GRUB: grub-bios (core image in bios_grub or the MBR gap) and grub-efi (EFI/BOOT/BOOTX64.EFI)',
  pipelines: {
    deploy: { after: ['fstab', 'initramfs'], applies: (o) => onLayout(o) && !!o.layout?.bootloader },
    image: { after: ['fstab'], applies: (o) => !!o.layout?.bootloader },
  },
  validate(objects) {
    const layout = requireLayout(objects, 'bootloader');
    if (!layout.bootloader)
      throw new BareonError(`${objects.layoutFile ?? 'layout'}: bootloader: missing (kind: [grub-bios, grub-efi])`, {
        exitCode: 2,
      });
    checkBootloader(layout, objects.layoutFile ?? objects.profileFile);
  },
  async run(ctx) {
    const layout = requireLayout(ctx.objects, 'bootloader');
    const bootloader = layout.bootloader!;
    const target = rootTarget(ctx.objects, 'bootloader');
    const ex = target.executor;
    const root = await rootTree(target);
    const scratch = await target.scratchDir();
    const step = (what: string) => ({ step: `bootloader: ${what}`, onLine: ctx.log });

    const boot = await root.readdir('boot');
    const kernel = newestWithPrefix(boot, 'vmlinuz-');
    if (!kernel)
      throw new BareonError('bootloader: no /boot/vmlinuz-* in the root filesystem', {
        hint: 'set bootable: true in the profile to install a kernel',
      });
    const initrd = boot.find((f) => f === `initrd.img-${kernel.slice('vmlinuz-'.length)}`);
    const profileName = ctx.objects.profile?.name ?? 'Linux';
    await root.writeFile(
      'boot/grub/grub.cfg',
      Buffer.from(grubConfig({ layout, bootloader, kernel, initrd, title: profileName })),
    );

    const { volume: bootVol, prefix } = bootVolume(layout);
    const modules = grubModules(layout);
    const early = `search --no-floppy --fs-uuid --set=root ${bootVol.fs!.uuid}\nset prefix=($root)${prefix}/grub\n`;
    await ex.writeFile(`${scratch}/bareon-grub-early.cfg`, Buffer.from(early));
    const mkimage = async (platform: 'i386-pc' | 'x86_64-efi', out: string, extra: string[]) => {
      const lib = await root.path(`usr/lib/grub/${platform}`);
      const present = await ex.run(['test', '-d', lib], { allowFailure: true });
      if (present.exitCode !== 0) {
        throw new BareonError(`bootloader: /usr/lib/grub/${platform} is missing from the root filesystem`, {
          hint: `install ${platform === 'i386-pc' ? 'grub-pc-bin' : 'grub-efi-amd64-bin'} in the image (bootable: true does)`,
        });
      }
      await root.plainDir(`usr/lib/grub/${platform}`, `the root filesystem's /usr/lib/grub/${platform}`);
      // a fresh copy: cp writes through links it finds at its destination
      const grubDir = await root.path('boot/grub', { mkdir: 'all' });
      await ex.run(['rm', '-rf', `${grubDir}/${platform}`], step(`remove the old ${platform} modules`));
      await ex.run(['cp', '-a', lib, `${grubDir}/`], step(`copy ${platform} modules`));
      await ex.run(
        [
          'grub-mkimage',
          '-d',
          lib,
          '-O',
          platform,
          '-o',
          out,
          '-c',
          `${scratch}/bareon-grub-early.cfg`,
          '-p',
          `${prefix}/grub`,
          ...extra,
          ...modules,
          'search',
          'search_fs_uuid',
        ],
        step(`grub-mkimage ${platform}`),
      );
    };
    const disks = disksWithTargets(ctx.objects, 'bootloader').filter(({ disk }) => bootDisks(layout).includes(disk));

    if (bootloader.kind.includes('grub-efi')) {
      if (target.stagedRoot) {
        // image order: the ESP is made from the staged tree after this
        const esp = target.geometry?.partitions.find((p) => p.spec.type === 'esp');
        if (!esp?.spec.mount)
          throw new BareonError(
            'bootloader: the esp needs a mount point (such as /boot/efi) to receive EFI/BOOT/BOOTX64.EFI',
          );
        const efiDir = await root.path(`${esp.spec.mount}/EFI/BOOT`, { mkdir: 'all' });
        await mkimage('x86_64-efi', `${efiDir}/BOOTX64.EFI`, ['fat', 'normal']);
      } else {
        // deploy order: the ESPs exist, and vfat is written with mtools (no vfat mount needed); each boot disk's ESP gets the loader
        await mkimage('x86_64-efi', `${scratch}/BOOTX64.EFI`, ['fat', 'normal']);
        for (const { disk, target: t } of disks) {
          const esp = t.geometry?.partitions.find((p) => p.spec.type === 'esp');
          if (!esp)
            throw new BareonError(`bootloader: disk "${disk.id}" gets grub-efi but has no esp partition`, {
              hint: 'add {type: esp, size: 256MiB, fs: {type: vfat}} to it, or leave it out of bootloader.disks',
            });
          const ref = await t.partition(esp.number);
          const img = `${ref.path}@@${ref.offset}`;
          await ex.run(['mmd', '-D', 's', '-i', img, '::/EFI', '::/EFI/BOOT'], {
            ...step(`create EFI/BOOT on the esp of ${disk.id}`),
            allowFailure: true,
          });
          await ex.run(
            ['mcopy', '-o', '-i', img, `${scratch}/BOOTX64.EFI`, '::/EFI/BOOT/BOOTX64.EFI'],
            step(`copy BOOTX64.EFI to the esp of ${disk.id}`),
          );
        }
      }
    }
    if (bootloader.kind.includes('grub-bios')) {
      await mkimage('i386-pc', `${scratch}/bareon-core.img`, ['biosdisk']);
      for (const { disk, target: t } of disks) {
        const biosGrub = t.geometry?.partitions.find((p) => p.spec.type === 'bios_grub');
        if (!biosGrub && disk.table === 'gpt')
          throw new BareonError(`bootloader: disk "${disk.id}" gets grub-bios but has no bios_grub partition`, {
            hint: 'add {type: bios_grub, size: 1MiB} as its first partition',
          });
        const coreSector = biosGrub ? biosGrub.start / SECTOR : 1;
        const room = biosGrub
          ? biosGrub.size / SECTOR
          : Math.min(...t.geometry!.partitions.map((p) => p.start)) / SECTOR - 1;
        const code = embedGrubBios(
          await root.readFile('usr/lib/grub/i386-pc/boot.img'),
          await ex.readFile(`${scratch}/bareon-core.img`),
          coreSector,
          room,
        );
        await ex.writeFile(`${scratch}/bareon-mbr.bin`, code.mbrCode);
        await ex.writeFile(`${scratch}/bareon-core.bin`, code.core);
        await ex.run(
          [
            'dd',
            `if=${scratch}/bareon-mbr.bin`,
            `of=${t.path}`,
            `bs=${MBR_CODE_BYTES}`,
            'count=1',
            'conv=notrunc',
            'status=none',
          ],
          step(`write the MBR boot code of ${disk.id}`),
        );
        await ex.run(
          [
            'dd',
            `if=${scratch}/bareon-core.bin`,
            `of=${t.path}`,
            `bs=${SECTOR}`,
            `seek=${coreSector}`,
            'conv=notrunc',
            'status=none',
          ],
          step(`write core.img on ${disk.id}`),
        );
      }
    }
    ctx.setTitle(
      `bootloader: ${bootloader.kind.join(' + ')}, kernel ${kernel.slice('vmlinuz-'.length)}${disks.length > 1 ? `, on ${disks.map((d) => d.disk.id).join(' and ')}` : ''}`,
    );
  },
});
