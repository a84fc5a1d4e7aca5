import path from 'node:path';
import type { Job } from '../objects/job.js';

/** A job path resolved against its job disk or URL: http(s) URLs and absolute paths stay as they are. */
export function resolveJobPath(p: string, base: string): string {
  if (/^https?:\/\//.test(p) || path.isAbsolute(p)) return p;
  return /^https?:\/\//.test(base) ? new URL(p, base).href : path.join(base, p);
}

/**
 * The bareon-deploy command line for a job. An inline layout is passed as `layoutFile`, which the
 * caller writes. JSON events and --yes: the agent runs unattended, on the disks the job names.
 */
export function deployArgs(job: Job, base: string, layoutFile?: string): string[] {
  const args = [resolveJobPath(job.source, base)];
  if (job.checksum) args.push('--checksum', job.checksum);
  if (!job.verify) args.push('--no-verify');
  if (typeof job.layout === 'string') args.push('--layout', resolveJobPath(job.layout, base));
  else if (job.layout) args.push('--layout', layoutFile!);
  for (const [key, value] of Object.entries(job.target_hints ?? {}))
    args.push('--target-hint', `${key}=${String(value)}`);
  const cd = job.configdrive;
  if (cd) {
    args.push('--meta-data', resolveJobPath(cd.meta_data, base));
    if (cd.user_data) args.push('--user-data', resolveJobPath(cd.user_data, base));
    if (cd.network_config) args.push('--network-config', resolveJobPath(cd.network_config, base));
  }
  for (const label of job.keep) args.push('--keep-label', label);
  if (job.grow) args.push('--grow');
  args.push('--yes', '--log-format', 'json');
  return args;
}
