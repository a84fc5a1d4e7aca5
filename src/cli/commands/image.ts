import { BootstrapBaseSchema, parseWith } from '../../objects/index.js';
import { bootstrapBase } from '../../docker/base-image.js';
import { DockerEngine } from '../../docker/engine.js';
import { ValidationError } from '../../core/errors.js';
import { resolveEpoch } from '../../build/epoch.js';
import type { Session } from '../session.js';

/** `bareon image bootstrap debian:bookworm`: mmdebstrap → docker import, tagged by digest and as REF. */
export async function bootstrapCommand(
  ref: string,
  opts: { mirror?: string; variant: string; tag?: string },
  session: Session,
): Promise<void> {
  const [distro, suite] = ref.split(':');
  if (!distro || !suite)
    throw new ValidationError(`"${ref}" is not distro:suite`, { hint: 'for example debian:bookworm or ubuntu:noble' });
  const spec = parseWith(
    BootstrapBaseSchema,
    { distro, suite, variant: opts.variant, mirror: opts.mirror },
    { label: 'bareon image bootstrap' },
  );
  const engine = await DockerEngine.connect(session.runId);
  const started = Date.now();
  const base = await bootstrapBase(engine, spec, {
    signal: session.signal,
    alsoTag: opts.tag ?? ref,
    epoch: resolveEpoch(undefined).epoch,
    onLine: (line) => session.reporter.emit({ event: 'log', task: 'bootstrap', line }),
  });
  session.reporter.print(
    `${base.how === 'reused' ? 'reused' : 'bootstrapped'} ${base.ref} (${base.id.slice(7, 19)}), tagged ${opts.tag ?? ref}, in ${((Date.now() - started) / 1000).toFixed(1)}s`,
  );
}
