import type { Command } from 'commander';
import type { DeployOptions } from './commands/deploy.js';
import { addConfigDriveOptions, logFormatOption, newProgram } from './program.js';

/** What bareon-deploy's command line gives its action. */
export type DeployCliOptions = DeployOptions & { logFormat: 'text' | 'json' };

/**
 * The bareon-deploy command line, with `action` run on what it parses: the bareon-deploy executable
 * runs it in a session of its own, and the deploy agent runs a job's command line in its process.
 */
export function deployProgram(
  action: (source: string, target: string | undefined, opts: DeployCliOptions) => Promise<void>,
): Command {
  return addConfigDriveOptions(
    newProgram(
      'bareon-deploy',
      'Deploy a disk image, a rootfs tarball, a filesystem image or a build manifest onto a block device or an image file.',
    )
      .argument(
        '<source>',
        'a path, an http(s):// URL, or - for stdin: raw[.gz|.xz|.zst], qcow2, tar[.gz|.zst], ext4[.zst], or <name>.manifest.json',
      )
      .argument(
        '[target]',
        'a whole disk (/dev/sda, /dev/nvme0n1, /dev/loop0) or an image file (created or extended to --size); or choose the disk with --target-hint',
      )
      .option(
        '--target-hint <key=value>',
        'choose the target disk by serial, wwn, model, vendor, size (">= 60GiB"), rotational, by_path or name; repeatable (see bareon disks)',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      )
      .option(
        '--layout <file>',
        'layout YAML for rootfs and filesystem images (default: profiles/layouts/bios-uefi-gpt.yaml); a layout of several disks finds each by its match: and takes no TARGET',
      )
      .option(
        '--size <size>',
        'size of an image-file target, such as 8GiB (default: the image size, or the file as it is)',
      )
      .option(
        '--checksum <sha256:hex>',
        'expected sha256:HEX (or sha512:HEX) of the source as stored (a manifest supplies it)',
      )
      .option(
        '--trust <allowed_signers>',
        'deploy only a manifest signed (<manifest>.sig, by bareon-build --sign or ssh-keygen -Y sign -n bareon-manifest) by a key in this allowed-signers file; checked before anything is written',
      )
      .option('--no-verify', 'write without checking a checksum (prints a warning)')
      .option(
        '--bmap <file>',
        "a raw image's block map (bmaptool's format): write only the blocks it maps, each range checked against its sha256 (default: <image>.bmap or <name>.bmap beside a raw file)",
      )
      .option('--no-bmap', 'write the whole raw image even when a block map is beside it')
      .option(
        '--format <format>',
        'what the source must be; its bytes must agree (qcow2, raw, raw.zst, tar.zst, ext4…)',
      )
      .option(
        '--keep-label <label>',
        'leave this partition (GPT name or filesystem label) and its data as they are; repeatable',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      )
      .option('--grow', 'after a whole-disk image: make the last partition and its filesystem fill the disk', false)
      .option(
        '--with <actions>',
        'add actions to the deploy pipeline (out-of-tree ones too), each where its plugin places it; comma-separated, repeatable',
        (v: string, all: string[]) => [...all, v],
        [] as string[],
      )
      .option(
        '--only <actions>',
        'comma-separated actions of the pipeline to run (partitioning,raid,lvm,filesystems,deploy,fstab,initramfs,bootloader,configdrive, and any --with)',
      )
      .option('--skip <actions>', 'comma-separated actions to skip')
      .option(
        '--preserve-on-error',
        'on failure, keep the half-written disk instead of clearing its partition tables',
        false,
      )
      .option('--yes', 'do not ask before overwriting a block device', false)
      .option(
        '--dry-run',
        'validate and print the plan (the resolved pipeline and where each entry came from, partitions, offsets, writes); touch nothing',
        false,
      )
      .addOption(logFormatOption()),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  bareon-deploy out/debian-bootable.manifest.json /dev/sdb --yes\n  bareon-deploy --checksum sha256:… --grow https://images.example/disk.raw.zst /dev/nvme0n1 --yes\n  bareon-deploy --trust /etc/bareon/allowed_signers https://images.example/web.manifest.json /dev/sda --yes\n  bareon-deploy rootfs.tar.zst disk.img --size 8GiB --checksum sha256:…\n  bareon-deploy out/debian-bootable.manifest.json disk.img --size 6GiB --grow --user-data user-data --meta-data meta-data',
    )
    .action(action);
}
