import { existsSync } from 'node:fs';
import path from 'node:path';
import { onLayout } from './placement.js';
import { buildUki, requireUkiTools } from './uki.js';
import {
  BareonError,
  definePlugin,
  rootTree,
  ValidationError,
  type Bootloader,
  type Disk,
  type DiskTarget,
  type PluginContext,
  type RootTree,
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

/** The uki's db key and certificate as paths, relative ones against the layout's directory. */
function signingFiles(sign: { key: string; cert: string }, layoutFile?: string): { key: string; cert: string } {
  const dir = layoutFile ? path.dirname(layoutFile) : process.cwd();
  return { key: path.resolve(dir, sign.key), cert: path.resolve(dir, sign.cert) };
}

/** The distribution's signed boot chain in the root filesystem, and where each file goes on the ESP. */
const SIGNED_CHAIN: [from: string, to: string][] = [
  ['usr/lib/shim/shimx64.efi.signed', 'EFI/BOOT/BOOTX64.EFI'],
  ['usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed', 'EFI/BOOT/grubx64.efi'],
  ['usr/lib/shim/mmx64.efi.signed', 'EFI/BOOT/mmx64.efi'],
];

/**
 * The signed chain when `wanted` (layout's bootloader.secure_boot, else the profile's) asks for it,
 * or, when neither says, when the root filesystem has it (a tarball built with it deploys with it).
 */
async function signedChain(root: RootTree, wanted: boolean | undefined): Promise<typeof SIGNED_CHAIN | undefined> {
  if (wanted === false) return undefined;
  const missing: string[] = [];
  for (const [from] of SIGNED_CHAIN) {
    const dir = path.posix.dirname(from);
    if (!(await root.readdir(dir)).includes(path.posix.basename(from))) missing.push(`/${from}`);
  }
  if (!missing.length) return SIGNED_CHAIN;
  if (wanted === undefined) return undefined;
  throw new BareonError(`bootloader: secure_boot: the root filesystem lacks ${missing.join(', ')}`, {
    exitCode: 2,
    hint: 'install shim-signed and grub-efi-amd64-signed in the image (a bootable profile with secure_boot: true does), or set secure_boot: false',
  });
}

/** A file for the ESP: made at `from` (as the executor sees it), copied to `to` under the ESP's root. */
interface EfiFile {
  from: string;
  to: string;
}

/**
 * Puts `files` on the ESP of each boot disk. An image build copies them into the staged tree under
 * the ESP's mount point (the ESP is made from that tree afterwards); a deploy writes them into the
 * vfat filesystem with mtools, without mounting it.
 */
async function installOnEsps(
  ctx: PluginContext,
  target: DiskTarget,
  disks: { disk: Disk; target: DiskTarget }[],
  files: EfiFile[],
): Promise<void> {
  const ex = target.executor;
  const step = (what: string) => ({ step: `bootloader: ${what}`, onLine: ctx.log });
  if (target.stagedRoot) {
    const esp = target.geometry?.partitions.find((p) => p.spec.type === 'esp');
    if (!esp?.spec.mount)
      throw new BareonError(
        'bootloader: the esp needs a mount point (such as /boot/efi) to receive EFI/BOOT/BOOTX64.EFI',
      );
    const root = await rootTree(target);
    for (const f of files) {
      const to = await root.path(`${esp.spec.mount}/${f.to}`, { mkdir: 'parents' });
      await ex.run(['cp', f.from, to], step(`copy ${f.to} to the esp`));
    }
    return;
  }
  const dirs = [...new Set(files.flatMap((f) => ancestors(f.to)))];
  for (const { disk, target: t } of disks) {
    const esp = t.geometry?.partitions.find((p) => p.spec.type === 'esp');
    if (!esp)
      throw new BareonError(`bootloader: disk "${disk.id}" gets an EFI boot loader but has no esp partition`, {
        hint: 'add {type: esp, size: 256MiB, fs: {type: vfat}} to it, or leave it out of bootloader.disks',
      });
    const ref = await t.partition(esp.number);
    const img = `${ref.path}@@${ref.offset}`;
    await ex.run(['mmd', '-D', 's', '-i', img, ...dirs.map((d) => `::/${d}`)], {
      ...step(`create ${dirs.join(', ')} on the esp of ${disk.id}`),
      allowFailure: true,
    });
    for (const f of files)
      await ex.run(['mcopy', '-o', '-i', img, f.from, `::/${f.to}`], step(`copy ${f.to} to the esp of ${disk.id}`));
  }
}

/** EFI/BOOT/x.efi → EFI, EFI/BOOT */
const ancestors = (file: string) =>
  path.posix
    .dirname(file)
    .split('/')
    .map((_, i, parts) => parts.slice(0, i + 1).join('/'));

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
  summary:
    'installs GRUB: grub-bios (core image in bios_grub or the MBR gap), grub-efi (EFI/BOOT/BOOTX64.EFI; the signed shim and GRUB for Secure Boot), or a unified kernel image (uki), signed with a site key',
  pipelines: {
    deploy: { after: ['fstab', 'initramfs'], applies: (o) => onLayout(o) && !!o.layout?.bootloader },
    image: { after: ['fstab'], applies: (o) => !!o.layout?.bootloader },
  },
  async validate(objects) {
    const layout = requireLayout(objects, 'bootloader');
    if (!layout.bootloader)
      throw new BareonError(`${objects.layoutFile ?? 'layout'}: bootloader: missing (kind: [grub-bios, grub-efi])`, {
        exitCode: 2,
      });
    checkBootloader(layout, objects.layoutFile ?? objects.profileFile);
    // a deploy (it has a source) builds the uki with this host's tools
    if (layout.bootloader.kind.includes('uki') && objects.source) await requireUkiTools(!!layout.bootloader.sign);
    if (layout.bootloader.sign) {
      const sign = signingFiles(layout.bootloader.sign, objects.layoutFile ?? objects.profileFile);
      for (const [what, file] of Object.entries(sign))
        if (!existsSync(file))
          throw new ValidationError(`${objects.layoutFile ?? 'layout'}: bootloader.sign.${what}: no file ${file}`, {
            hint: 'a PEM db key and certificate, relative to the layout (sbsign --key/--cert)',
          });
    }
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

    let signed = false;
    if (bootloader.kind.includes('grub-efi')) {
      // the EFI files are made in the scratch dir, then copied onto each boot disk's ESP
      const chain = await signedChain(root, bootloader.secure_boot ?? ctx.objects.profile?.secure_boot);
      const files: EfiFile[] = [];
      if (chain) {
        signed = true;
        for (const [from, to] of chain) {
          await ex.writeFile(`${scratch}/${path.posix.basename(to)}`, await root.readFile(from));
          files.push({ from: `${scratch}/${path.posix.basename(to)}`, to });
        }
        // the signed GRUB is one image with its modules built in; it reads EFI/debian/grub.cfg
        // beside it on the ESP, which hands over to the system's grub.cfg
        await ex.writeFile(`${scratch}/bareon-esp-grub.cfg`, Buffer.from(`${early}configfile $prefix/grub.cfg\n`));
        files.push({ from: `${scratch}/bareon-esp-grub.cfg`, to: 'EFI/debian/grub.cfg' });
      } else {
        await mkimage('x86_64-efi', `${scratch}/BOOTX64.EFI`, ['fat', 'normal']);
        files.push({ from: `${scratch}/BOOTX64.EFI`, to: 'EFI/BOOT/BOOTX64.EFI' });
      }
      await installOnEsps(ctx, target, disks, files);
    }
    if (bootloader.kind.includes('uki')) {
      const rootFs = rootVolume(layout).fs!;
      const uki = await buildUki(
        root,
        ex,
        scratch,
        {
          kernel: `boot/${kernel}`,
          initrd: initrd && `boot/${initrd}`,
          cmdline: `root=UUID=${rootFs.uuid} ro ${bootloader.cmdline}`,
          sign: bootloader.sign && signingFiles(bootloader.sign, ctx.objects.layoutFile ?? ctx.objects.profileFile),
        },
        step,
      );
      signed = !!bootloader.sign;
      await installOnEsps(ctx, target, disks, [{ from: uki, to: 'EFI/BOOT/BOOTX64.EFI' }]);
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
      `bootloader: ${bootloader.kind.join(' + ')}${signed ? (bootloader.kind.includes('uki') ? ' (signed with the site key)' : ' (signed shim and GRUB, for Secure Boot)') : ''}, kernel ${kernel.slice('vmlinuz-'.length)}${disks.length > 1 ? `, on ${disks.map((d) => d.disk.id).join(' and ')}` : ''}`,
    );
  },
});
