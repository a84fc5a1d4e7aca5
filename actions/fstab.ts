import { onLayout } from './placement.js';
import { definePlugin, rootTree, layoutVolumes, type Layout } from 'bareon/plugin';
import { rootVolume, requireLayout, rootTarget } from 'bareon/disk';

/** The fstab for a layout: every mounted filesystem and every swap, by UUID; ESPs with nofail. */
export function fstabFor(layout: Layout): string {
  const lines = [
    '# <file system>  <mount point>  <type>  <options>  <dump>  <pass>',
    '# written by bareon from the layout',
  ];
  const mounts = layoutVolumes(layout).filter((p) => p.fs && (p.mount || p.fs.type === 'swap'));
  const depth = (mount?: string) => (mount === undefined ? Infinity : mount === '/' ? 0 : mount.split('/').length);
  mounts.sort((a, b) => depth(a.mount) - depth(b.mount));
  for (const p of mounts) {
    const fs = p.fs!;
    if (fs.type === 'swap') {
      lines.push(`UUID=${fs.uuid}  none  swap  ${fs.options.join(',') || 'sw'}  0  0`);
      continue;
    }
    // an ESP is the firmware's: the system runs without it, as when its disk of a mirror is gone
    const esp = p.kind === 'partition' && p.partition.type === 'esp';
    const defaults =
      p.mount === '/' && fs.type.startsWith('ext')
        ? 'errors=remount-ro'
        : fs.type === 'vfat'
          ? `umask=0077${esp ? ',nofail' : ''}`
          : 'defaults';
    const pass = p.mount === '/' ? 1 : fs.type === 'btrfs' || fs.type === 'xfs' ? 0 : 2;
    lines.push(`UUID=${fs.uuid}  ${p.mount}  ${fs.type}  ${fs.options.join(',') || defaults}  0  ${pass}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Writes /etc/fstab into the root filesystem being built, from the layout's mounts. */
export default definePlugin({
  reads: ['layout', 'layoutFile', 'profileFile', 'disks'],
  summary: 'writes /etc/fstab from the layout mounts, by filesystem UUID',
  pipelines: { deploy: { after: ['deploy'], applies: onLayout }, image: { after: ['partitioning'] } },
  validate(objects) {
    rootVolume(requireLayout(objects, 'fstab'), objects.layoutFile ?? objects.profileFile);
  },
  async run(ctx) {
    const layout = requireLayout(ctx.objects, 'fstab');
    const target = rootTarget(ctx.objects, 'fstab');
    await (await rootTree(target)).writeFile('etc/fstab', Buffer.from(fstabFor(layout)));
    ctx.setTitle(
      `fstab: ${
        fstabFor(layout)
          .split('\n')
          .filter((l) => l.startsWith('UUID=')).length
      } entries`,
    );
  },
});
