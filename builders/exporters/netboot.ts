import path from 'node:path';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { artifactInputs, reusableArtifact } from 'bareon/containers';
import { BareonError, ValidationError, definePlugin, VERSION } from 'bareon';
import { newestWithPrefix } from 'bareon/disk';
import { tarToNewc, progressMeter, writeArtifactFile, requireZstd, zstdStage } from 'bareon/stream';
import { requireBuildOutput } from './build-output.js';

/** What /etc/fstab says in a root filesystem that is the initramfs itself. */
const RAM_ROOT_FSTAB = Buffer.from(
  '# This system runs from its initramfs (network boot): the root filesystem is in RAM, nothing to mount.\n',
);

/**
 * What a root filesystem in RAM has no use for: the kernels and initramfs images in /boot (the boot
 * loader brings the kernel, and the tree is the initramfs).
 */
const BOOT_IMAGES = /^boot\/(vmlinuz|initrd\.img|System\.map)-[^/]+$/;

/**
 * A network-boot pair: the root filesystem's newest kernel (`NAME.vmlinuz`) and the whole root
 * filesystem as a zstd-compressed newc initramfs (`NAME.initramfs`) whose `/init` is the system's
 * own init. The kernel unpacks it into a tmpfs and runs it as the final root, the way
 * ironic-python-agent's ramdisk runs: no disk, no second stage. fstab is emptied, as the disk it
 * named is not there, and /boot's kernels and initramfs images are left out. The machine needs RAM
 * for the unpacked tree (about twice the tar's size).
 */
export const netboot = definePlugin({
  reads: ['rootfs', 'profile', 'epoch', 'outDir', 'build'],
  writes: ['artifacts'],
  summary: 'kernel + the whole root filesystem as an initramfs, for PXE/HTTP boot with the root in RAM',
  options: z.strictObject({ level: z.number().int().min(1).max(19).default(3) }),
  async validate(objects) {
    const { profile } = requireBuildOutput(objects, 'netboot');
    if (!profile.bootable)
      throw new ValidationError(`outputs: netboot needs a kernel, and profile ${profile.name} is not bootable`, {
        hint: 'set bootable: true, which installs the kernel and an init',
      });
    await requireZstd('netboot');
  },
  async run(ctx) {
    const { outDir, profile } = requireBuildOutput(ctx.objects, 'netboot');
    const rootfs = ctx.objects.rootfs;
    if (!rootfs) throw new BareonError('netboot: no root filesystem; a builder must run first');
    const inputs = artifactInputs({
      bareon: VERSION,
      image: rootfs.image,
      format: 'netboot',
      options: ctx.options,
      hostname: profile.hostname,
      hygiene: profile.hygiene,
      epoch: ctx.objects.epoch,
    });
    const previous = ctx.flags.noCache
      ? []
      : await Promise.all(['vmlinuz', 'initramfs'].map((f) => reusableArtifact(ctx.objects, f, inputs)));
    if (previous.length === 2 && previous.every(Boolean)) {
      ctx.objects.artifacts.push(...previous.map((a) => a!));
      ctx.setTitle(`export ${profile.name}.vmlinuz + .initramfs: up to date`);
      return;
    }

    const kernels = new Map<string, Buffer[]>();
    const raw = await rootfs.open(ctx.signal);
    const metered = raw.pipe(progressMeter(ctx.progress));
    raw.on('error', (err) => metered.destroy(err));
    const cpio = tarToNewc(metered, {
      decide(name) {
        if (name === 'etc/fstab') return { action: 'replace', content: RAM_ROOT_FSTAB, mode: 0o644 };
        return BOOT_IMAGES.test(name) ? { action: 'drop' } : { action: 'keep' };
      },
      watch(name) {
        if (!/^boot\/vmlinuz-[^/]+$/.test(name)) return undefined;
        const chunks: Buffer[] = [];
        kernels.set(path.basename(name), chunks);
        return (data) => chunks.push(data);
      },
      // thrown here, a missing kernel or init fails the stream, so no initramfs file is left
      append(names) {
        if (!kernels.size)
          throw new BareonError(`netboot: no /boot/vmlinuz-* in ${profile.name}'s root filesystem`, {
            hint: 'bootable: true installs one',
          });
        if (names.has('init')) return [];
        const init = ['sbin/init', 'usr/sbin/init', 'lib/systemd/systemd', 'usr/lib/systemd/systemd'].find((n) =>
          names.has(n),
        );
        if (!init)
          throw new BareonError(`netboot: ${profile.name}'s root filesystem has no /sbin/init for the kernel to run`, {
            hint: 'bootable: true installs systemd-sysv',
          });
        return [{ name: 'init', symlink: `/${init}`, mode: 0o777 }];
      },
    });
    const initramfs = path.join(outDir, `${profile.name}.initramfs`);
    ctx.setTitle(`export ${path.basename(initramfs)}`);
    ctx.progress.start(rootfs.apparentSize);
    const packed = await writeArtifactFile(initramfs, cpio, [zstdStage(ctx.options.level)], {
      cleanup: ctx.cleanup,
      signal: ctx.signal,
    });

    const newest = newestWithPrefix(kernels.keys(), 'vmlinuz-')!;
    const vmlinuz = path.join(outDir, `${profile.name}.vmlinuz`);
    const kernel = await writeArtifactFile(vmlinuz, Readable.from(kernels.get(newest)!), [], {
      cleanup: ctx.cleanup,
      signal: ctx.signal,
    });
    ctx.objects.artifacts.push(
      { uri: path.basename(vmlinuz), format: 'vmlinuz', sha256: kernel.sha256, size: kernel.size, inputs },
      { uri: path.basename(initramfs), format: 'initramfs', sha256: packed.sha256, size: packed.size, inputs },
    );
    ctx.setTitle(
      `export ${profile.name}.vmlinuz (${newest.slice('vmlinuz-'.length)}) + ${path.basename(initramfs)}: ${(packed.size / 2 ** 20).toFixed(1)} MiB`,
    );
  },
});
