import { onLayout } from './placement.js';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  BareonError,
  definePlugin,
  appendFileInRoot,
  readdirInRoot,
  readFileInRoot,
  resolveInRoot,
  writeFileInRoot,
} from 'bareon/plugin';
import { newestWithPrefix, rootVolume, requireLayout, rootTarget, HostExecutor, bindSystemDirs } from 'bareon/disk';
import { alignmentPadding, newcArchive } from 'bareon/stream';

/** mdadm.conf for the arrays of this run: mdadm's own ARRAY lines, so that they assemble by UUID at boot. */
export function mdadmConf(arrayLines: string[]): string {
  return [
    '# written by bareon: the arrays of this layout, assembled at boot by UUID',
    'HOMEHOST <system>',
    'MAILADDR root',
    ...arrayLines,
    '',
  ].join('\n');
}

/** The newest /boot/initrd.img-* of the deployed system, as a path inside it. */
async function currentInitrd(tree: string): Promise<string | undefined> {
  const newest = newestWithPrefix(await readdirInRoot(tree, 'boot'), 'initrd.img-');
  return newest ? `boot/${newest}` : undefined;
}

/** Whether `file` was written no earlier than every one of `inputs` (all must exist; paths inside `tree`). */
async function builtAfter(tree: string, file: string, inputs: string[]): Promise<boolean> {
  const made = (await stat(await resolveInRoot(tree, file))).mtimeMs;
  for (const input of inputs) {
    const st = await stat(await resolveInRoot(tree, input)).catch(() => undefined);
    if (!st || st.mtimeMs > made) return false;
  }
  return true;
}

/**
 * Makes a root on md or LVM bootable: writes /etc/mdadm/mdadm.conf, and gives the initramfs what it
 * needs to assemble them: mdadm.conf appended to an initramfs that already has mdadm and lvm, or
 * else an initramfs rebuilt in a chroot (update-initramfs).
 */
export default definePlugin({
  reads: ['layout', 'layoutFile', 'disks', 'epoch'],
  summary:
    'writes mdadm.conf and brings it into the initramfs of the deployed system (rebuilt when it lacks mdadm or lvm), so that a root on md RAID or LVM assembles at boot',
  pipelines: {
    deploy: {
      after: ['fstab'],
      applies: (o) => onLayout(o) && !!(o.layout?.raids.length || o.layout?.volume_groups.length),
    },
  },
  validate(objects) {
    rootVolume(requireLayout(objects, 'initramfs'), objects.layoutFile);
  },
  describe(objects) {
    const layout = objects.layout!;
    return [
      ...(layout.raids.length
        ? [`/etc/mdadm/mdadm.conf: ARRAY lines for ${layout.raids.map((r) => r.id).join(', ')}`]
        : []),
      'initramfs: mdadm.conf added, or update-initramfs -u -k all in the deployed system when it lacks mdadm or lvm',
    ];
  },
  async run(ctx) {
    const layout = requireLayout(ctx.objects, 'initramfs');
    const target = rootTarget(ctx.objects, 'initramfs');
    const tree = await target.rootDir();
    const ex = new HostExecutor(ctx.signal);
    const executable = async (file: string) =>
      access(await resolveInRoot(tree, file), constants.X_OK).then(
        () => true,
        () => false,
      );
    const has = async (tool: string) => (await executable(`usr/sbin/${tool}`)) || executable(`sbin/${tool}`);
    const needs = [
      ...(layout.raids.length ? ['mdadm'] : []),
      ...(layout.volume_groups.length ? ['lvm'] : []),
      'update-initramfs',
    ];
    const missing: string[] = [];
    for (const tool of needs) if (!(await has(tool))) missing.push(tool);
    if (missing.length) {
      throw new BareonError(
        `initramfs: the deployed system has no ${missing.join(', ')}, so its root on ${layout.raids.length ? 'md RAID' : 'LVM'} would not assemble at boot`,
        {
          hint: `install ${missing.map((t) => ({ mdadm: 'mdadm', lvm: 'lvm2', 'update-initramfs': 'initramfs-tools' })[t]).join(' ')} in the image (packages: in its profile)`,
        },
      );
    }
    if (layout.raids.length) {
      const lines: string[] = [];
      for (const r of layout.raids)
        lines.push(
          (
            await ex.run(['mdadm', '--detail', '--brief', `/dev/md/${r.id}`], {
              step: `initramfs: mdadm --detail ${r.id}`,
            })
          ).stdout.trim(),
        );
      await writeFileInRoot(tree, 'etc/mdadm/mdadm.conf', Buffer.from(mdadmConf(lines)));
      ctx.log(`mdadm.conf: ${lines.join('; ')}`);
    }
    // an initramfs made after mdadm and lvm2 were installed already assembles arrays and activates
    // volume groups; it only lacks this run's mdadm.conf, which goes on as an appended cpio member.
    // Rebuilding runs thousands of processes: seconds on a machine, many minutes under emulation.
    const initrd = await currentInitrd(tree);
    if (
      initrd &&
      (await builtAfter(
        tree,
        initrd,
        needs
          .filter((t) => t !== 'update-initramfs')
          .map((t) => `usr/share/initramfs-tools/hooks/${t === 'lvm' ? 'lvm2' : t}`),
      ))
    ) {
      if (layout.raids.length) {
        const conf = await readFileInRoot(tree, 'etc/mdadm/mdadm.conf');
        const size = (await stat(await resolveInRoot(tree, initrd))).size;
        await appendFileInRoot(
          tree,
          initrd,
          Buffer.concat([
            alignmentPadding(size),
            newcArchive(
              [
                { name: 'etc', mode: 0o755 },
                { name: 'etc/mdadm', mode: 0o755 },
                { name: 'etc/mdadm/mdadm.conf', mode: 0o644, data: conf },
              ],
              ctx.objects.epoch ?? 0,
            ),
          ]),
        );
      }
      ctx.setTitle(
        `initramfs: ${path.basename(initrd)} already assembles ${needs.filter((t) => t !== 'update-initramfs').join(' and ')}${layout.raids.length ? '; mdadm.conf added to it' : ''}`,
      );
      return;
    }
    const unbind = await bindSystemDirs(ex, ctx.cleanup, tree);
    try {
      await ex.run(['chroot', tree, 'update-initramfs', '-u', '-k', 'all'], {
        step: 'initramfs: update-initramfs',
        onLine: ctx.log,
      });
    } finally {
      await unbind();
    }
    ctx.setTitle(`initramfs: rebuilt with ${needs.filter((t) => t !== 'update-initramfs').join(' and ')}`);
  },
});
