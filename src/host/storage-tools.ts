import { access } from 'node:fs/promises';
import { ValidationError } from '../core/errors.js';
import { HostExecutor } from './executor.js';

/**
 * Checks, before anything is written, that this machine can make md arrays or LVM volumes: the
 * kernel driver and the tool. The deploy agent has both; a kernel without them (some containers,
 * some CI machines) is told so up front.
 */
export async function requireStorageSupport(kind: 'md' | 'lvm', file: string): Promise<void> {
  const ex = new HostExecutor();
  const kernel = kind === 'md' ? '/proc/mdstat' : '/dev/mapper/control';
  const tool = kind === 'md' ? 'mdadm' : 'lvm';
  const haveKernel = await access(kernel).then(
    () => true,
    () => false,
  );
  if (!haveKernel) {
    const load = await ex.run(['modprobe', kind === 'md' ? 'md_mod' : 'dm_mod'], { allowFailure: true });
    if (
      load.exitCode !== 0 ||
      !(await access(kernel).then(
        () => true,
        () => false,
      ))
    ) {
      throw new ValidationError(
        `${file}: ${kind === 'md' ? 'raids:' : 'volume_groups:'} need the kernel's ${kind === 'md' ? 'md (software RAID)' : 'device-mapper'} driver, and this kernel has none (${kernel} is missing)`,
        {
          hint: 'deploy from a machine whose kernel has it, such as the deploy agent (profiles/deploy-agent.yaml); nothing was written',
        },
      );
    }
  }
  const which = await ex.run(['sh', '-c', `command -v ${tool}`], { allowFailure: true });
  if (which.exitCode !== 0)
    throw new ValidationError(`${file}: ${tool} is not installed here`, {
      hint: `install ${kind === 'md' ? 'mdadm' : 'lvm2'}; nothing was written`,
    });
}
