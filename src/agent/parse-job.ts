import { JobSchema, type Job } from '../objects/job.js';
import { parseWith, rememberOrigin, YamlSource } from '../objects/yaml-source.js';

/**
 * A job document (YAML or JSON) parsed and validated. Every problem is a ValidationError that names
 * `origin` and, where it can, the line and column; so do later checks of an inline layout.
 */
export function parseJob(text: string, origin: string): Job {
  const source = YamlSource.parse(origin, text);
  const job = parseWith(JobSchema, source.toJS(), { source, label: origin });
  if (job.layout && typeof job.layout === 'object') rememberOrigin(job.layout, source, ['layout']);
  return job;
}
