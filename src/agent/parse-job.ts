import { JobSchema, type Job } from '../objects/job.js';
import { parseWith, YamlSource } from '../objects/yaml-source.js';

/**
 * A job document (YAML or JSON) parsed and validated. Every problem is a ValidationError that names
 * `origin` and, where it can, the line and column; `raw` is the document as written (its inline
 * layout goes to bareon-deploy as it is, to be validated with bareon-deploy's own messages).
 */
export function parseJob(text: string, origin: string): { job: Job; raw: { layout?: unknown } } {
  const source = YamlSource.parse(origin, text);
  const raw = source.toJS() as { layout?: unknown };
  return { job: parseWith(JobSchema, raw, { source, label: origin }), raw };
}
