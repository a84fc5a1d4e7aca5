import { BareonError } from '../src/core/errors.js';
import { definePlugin } from '../src/core/plugins/types.js';
import { rootVolume } from '../src/disk/layout-checks.js';
import { requireLayout, rootTarget } from '../src/disk/targets.js';
import { HostExecutor } from '../src/host/executor.js';
import { bindSystemDirs } from '../src/host/mount.js';

/** mdadm.conf for the arrays of this run: mdadm's own ARRAY lines, so that they assemble by UUID at boot. */
export function mdadmConf(arrayLines: string[]): string {
  return ['# written by bareon: the arrays of this layout, assembled at boot by UUID', 'HOMEHOST <system>', 'MAILADDR root', ...arrayLines, ''].join('\n');
}

/**
 * Makes a root on md or LVM bootable: writes /etc/mdadm/mdadm.conf and rebuilds the target's
 * initramfs in a chroot, so the initramfs carries mdadm, lvm and the configuration to assemble them.
 */
export default definePlugin({
  summary: 'writes mdadm.conf and rebuilds the initramfs of the deployed system, so that a root on md RAID or LVM assembles at boot',
  validate(objects) {
    rootVolume(requireLayout(objects, 'initramfs'), objects.layoutFile);
  },
  describe(objects) {
    const layout = objects.layout!;
    return [...(layout.raids.length ? [`/etc/mdadm/mdadm.conf: ARRAY lines for ${layout.raids.map((r) => r.id).join(', ')}`] : []), 'update-initramfs -u -k all in the deployed system'];
  },
  async run(ctx) {
    const layout = requireLayout(ctx.objects, 'initramfs');
    const target = rootTarget(ctx.objects, 'initramfs');
    const tree = await target.rootDir();
    const ex = new HostExecutor(ctx.signal);
    const has = async (tool: string) => (await ex.run(['sh', '-c', `[ -x ${tree}/usr/sbin/${tool} ] || [ -x ${tree}/sbin/${tool} ]`], { allowFailure: true })).exitCode === 0;
    const needs = [...(layout.raids.length ? ['mdadm'] : []), ...(layout.volume_groups.length ? ['lvm'] : []), 'update-initramfs'];
    const missing: string[] = [];
    for (const tool of needs) if (!(await has(tool))) missing.push(tool);
    if (missing.length) {
      throw new BareonError(`initramfs: the deployed system has no ${missing.join(', ')}, so its root on ${layout.raids.length ? 'md RAID' : 'LVM'} would not assemble at boot`, {
        hint: `install ${missing.map((t) => ({ mdadm: 'mdadm', lvm: 'lvm2', 'update-initramfs': 'initramfs-tools' })[t]).join(' ')} in the image (packages: in its profile)`,
      });
    }
    if (layout.raids.length) {
      const lines: string[] = [];
      for (const r of layout.raids) lines.push((await ex.run(['mdadm', '--detail', '--brief', `/dev/md/${r.id}`], { step: `initramfs: mdadm --detail ${r.id}` })).stdout.trim());
      await ex.writeFile(`${tree}/etc/mdadm/mdadm.conf`, Buffer.from(mdadmConf(lines)));
      ctx.log(`mdadm.conf: ${lines.join('; ')}`);
    }
    const unbind = await bindSystemDirs(ex, ctx.cleanup, tree);
    try {
      await ex.run(['chroot', tree, 'update-initramfs', '-u', '-k', 'all'], { step: 'initramfs: update-initramfs', onLine: ctx.log });
    } finally {
      await unbind();
    }
    ctx.setTitle(`initramfs: rebuilt with ${needs.filter((t) => t !== 'update-initramfs').join(' and ')}`);
  },
});
