import path from 'node:path';
import type { DeployInput } from '../objects/deploy.js';
import type { Job } from '../objects/job.js';

/** A job path resolved against its job disk or URL: http(s) URLs and absolute paths stay as they are. */
export function resolveJobPath(p: string, base: string): string {
  if (/^https?:\/\//.test(p) || path.isAbsolute(p)) return p;
  return /^https?:\/\//.test(base) ? new URL(p, base).href : path.join(base, p);
}

/**
 * The deploy request for a job: its paths resolved against the job disk or URL, an inline layout
 * passed as parsed (its errors located in the job), JSON events and no question asked (the agent
 * runs unattended, on the disks the job names). `agentTrust` is the agent image's own
 * allowed-signers file, when it has one.
 */
export function jobDeployInput(job: Job, base: string, origin: string, agentTrust?: string): DeployInput {
  const cd = job.configdrive;
  // the agent's own allowed signers, when its image has them, bind every job: a job cannot loosen them
  const trust = agentTrust
    ? { trust: agentTrust, trustOrigin: `the agent's ${agentTrust}` }
    : job.trust
      ? { trust: resolveJobPath(job.trust, base), trustOrigin: `${origin} trust` }
      : {};
  return {
    ...trust,
    source: resolveJobPath(job.source, base),
    layout:
      typeof job.layout === 'string'
        ? resolveJobPath(job.layout, base)
        : job.layout
          ? { layout: job.layout, file: origin }
          : undefined,
    checksum: job.checksum,
    settings: { verify: job.verify, grow: job.grow, preserveOnError: false },
    yes: true,
    dryRun: false,
    targetHints: Object.entries(job.target_hints ?? {}).map(([key, value]) => `${key}=${String(value)}`),
    keepLabels: job.keep,
    with: job.with.map((name, i) => ({ name, origin: `${origin} with[${i}]` })),
    configDrive: cd
      ? {
          metaData: resolveJobPath(cd.meta_data, base),
          userData: cd.user_data && resolveJobPath(cd.user_data, base),
          networkConfig: cd.network_config && resolveJobPath(cd.network_config, base),
        }
      : {},
  };
}
