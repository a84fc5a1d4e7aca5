import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from '../core/errors.js';
import type { Job } from '../objects/job.js';
import { resolveJobPath } from './job-request.js';

const isUrl = (p: string) => /^https?:\/\//.test(p);

/**
 * bareon-deploy streams its source from a URL but reads the layout and the config drive's files
 * from disk: for a job fetched over HTTP, those small files are downloaded into `dir` and the job
 * names them there. The source stays a URL.
 */
export async function localiseJobFiles(job: Job, base: string, dir: string, signal: AbortSignal): Promise<Job> {
  const fetchTo = async (p: string, name: string): Promise<string> => {
    const url = resolveJobPath(p, base);
    if (!isUrl(url)) return url;
    const res = await fetch(url, { signal });
    if (!res.ok) throw new ValidationError(`job file ${url}: HTTP ${res.status} ${res.statusText}`);
    const file = path.join(dir, name);
    await writeFile(file, Buffer.from(await res.arrayBuffer()));
    return file;
  };
  const local: Job = { ...job };
  if (typeof job.layout === 'string') local.layout = await fetchTo(job.layout, 'layout.yaml');
  if (job.trust) local.trust = await fetchTo(job.trust, 'allowed_signers');
  if (job.configdrive) {
    const cd = job.configdrive;
    local.configdrive = {
      ...cd,
      meta_data: await fetchTo(cd.meta_data, 'meta-data'),
      ...(cd.user_data ? { user_data: await fetchTo(cd.user_data, 'user-data') } : {}),
      ...(cd.network_config ? { network_config: await fetchTo(cd.network_config, 'network-config') } : {}),
    };
  }
  return local;
}
