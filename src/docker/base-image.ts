import { BareonError } from '../core/errors.js';
import { canonicalJson, sha256 } from '../core/digest.js';
import type { BootstrapBase, ImageBase } from '../objects/profile.js';
import { LineTail, lineSplitter } from '../stream/lines.js';
import type { DockerEngine } from './engine.js';
import { defaultMirror } from './mirror.js';

export const BASE_DIGEST_LABEL = 'org.bareon.base.digest';

export interface ResolvedBase {
  /** A reference that names the image locally (tag or id). */
  ref: string;
  id: string;
  how: 'local' | 'pulled' | 'bootstrapped' | 'reused';
}

export interface ResolveOptions {
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  /** Also tag the result with this reference (e.g. debian:bookworm). */
  alsoTag?: string;
  /** SOURCE_DATE_EPOCH for mmdebstrap: the base's timestamps, and part of its digest. */
  epoch?: number;
}

const DEFAULT_COMPONENTS: Record<string, string[]> = { debian: ['main'], ubuntu: ['main', 'universe'] };

/** The bootstrap spec with every default filled in: what the digest is taken over. */
export async function completeBootstrap(spec: BootstrapBase): Promise<Required<BootstrapBase>> {
  return {
    distro: spec.distro,
    suite: spec.suite,
    variant: spec.variant,
    arch: spec.arch,
    mirror: spec.mirror ?? (await defaultMirror(spec.distro)),
    components: spec.components ?? DEFAULT_COMPONENTS[spec.distro] ?? ['main'],
  };
}

export function bootstrapTag(
  spec: Required<BootstrapBase>,
  epoch?: number,
): { repo: string; tag: string; digest: string } {
  const digest = sha256(canonicalJson({ tool: 'mmdebstrap', ...spec, ...(epoch === undefined ? {} : { epoch }) }));
  return { repo: `bareon/base-${spec.distro}`, tag: `${spec.suite}-${digest.slice(0, 12)}`, digest };
}

/**
 * mmdebstrap → docker import, streamed (the tar never touches the disk). Tagged by a digest of the
 * bootstrap inputs, so the same inputs are bootstrapped once and reused afterwards.
 */
export async function bootstrapBase(
  engine: DockerEngine,
  input: BootstrapBase,
  opts: ResolveOptions = {},
): Promise<ResolvedBase> {
  const spec = await completeBootstrap(input);
  const { repo, tag, digest } = bootstrapTag(spec, opts.epoch);
  const existing = await engine.inspectImage(`${repo}:${tag}`);
  if (existing) {
    if (opts.alsoTag) await tagAs(engine, existing.Id, opts.alsoTag);
    return { ref: `${repo}:${tag}`, id: existing.Id, how: 'reused' };
  }
  const args = [
    `--variant=${spec.variant}`,
    `--architectures=${spec.arch}`,
    `--components=${spec.components.join(',')}`,
    '--format=tar',
    spec.suite,
    '-',
    spec.mirror,
  ];
  const tail = new LineTail(30);
  const env = opts.epoch === undefined ? undefined : { SOURCE_DATE_EPOCH: String(opts.epoch) };
  const { execa } = await import('execa');
  const child = execa('mmdebstrap', args, {
    env,
    buffer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    cancelSignal: opts.signal,
    reject: false,
  });
  child.stderr.pipe(
    lineSplitter((line) => {
      tail.push(line);
      opts.onLine?.(line);
    }),
  );
  // imported under a pending tag, and given the real one only once mmdebstrap has succeeded
  const imported = engine.importImage(
    child.stdout,
    { repo, tag: `${tag}-partial` },
    { [BASE_DIGEST_LABEL]: digest, 'org.bareon.base.spec': canonicalJson(spec) },
  );
  const [result, id] = await Promise.all([child, imported.catch((err: Error) => err)]);
  if (result.failed || id instanceof Error) {
    if (typeof id === 'string') await engine.removeImage(id, true);
    const why = result.failed
      ? `mmdebstrap exited with ${result.exitCode ?? result.signal ?? 'an error'}`
      : (id as Error).message;
    const hint =
      result.code === 'ENOENT'
        ? 'install mmdebstrap (apt-get install mmdebstrap) or set base.image to an image you have'
        : result.failed
          ? 'check base.mirror is reachable (the last lines of mmdebstrap say more)'
          : ((id as BareonError).hint ?? 'check the container engine (docker info)');
    throw new BareonError(`bootstrap of ${spec.distro} ${spec.suite} from ${spec.mirror} failed: ${why}`, {
      hint,
      details: tail.toString(),
    });
  }
  await engine.tagImage(id, repo, tag);
  await engine.removeImage(`${repo}:${tag}-partial`);
  if (opts.alsoTag) await tagAs(engine, id, opts.alsoTag);
  return { ref: `${repo}:${tag}`, id, how: 'bootstrapped' };
}

async function tagAs(engine: DockerEngine, id: string, ref: string): Promise<void> {
  const i = ref.lastIndexOf(':');
  const [repo, tag] = i > 0 && !ref.slice(i).includes('/') ? [ref.slice(0, i), ref.slice(i + 1)] : [ref, 'latest'];
  await engine.tagImage(id, repo, tag);
}

/** Base image resolution: a local image, then a pull, then a bootstrap when the profile allows one. */
export async function resolveBaseImage(
  engine: DockerEngine,
  base: ImageBase | BootstrapBase,
  opts: ResolveOptions = {},
): Promise<ResolvedBase> {
  if (!('image' in base)) return bootstrapBase(engine, base, opts);
  const local = await engine.inspectImage(base.image);
  if (local) return { ref: base.image, id: local.Id, how: 'local' };
  let pullError: Error;
  try {
    await engine.pull(base.image, opts.onLine);
    const pulled = await engine.inspectImage(base.image);
    if (pulled) return { ref: base.image, id: pulled.Id, how: 'pulled' };
    pullError = new Error('the pull reported success but the image is missing');
  } catch (err) {
    pullError = err as Error;
  }
  if (base.bootstrap) return bootstrapBase(engine, base.bootstrap, { ...opts, alsoTag: base.image });
  const [distro, suite] = base.image.split(':');
  throw new BareonError(
    `base image ${base.image} is not local and cannot be pulled: ${pullError.message.split('\n')[0]}`,
    {
      hint:
        `bootstrap it from a Debian/Ubuntu mirror: \`bareon image bootstrap ${distro}:${suite ?? 'bookworm'} [--mirror URL]\`, ` +
        `or add base.bootstrap: {distro: ${distro}, suite: ${suite ?? 'bookworm'}} to the profile, or use base: {distro, suite} instead of base.image`,
    },
  );
}

/** What a base would resolve to, found without pulling or bootstrapping anything (for --dry-run). */
export interface LocalBase {
  ref: string;
  /** The local image, when there is one. */
  id?: string;
  /** What the build would do instead, when there is none. */
  would?: string;
}

/** The local image a base resolves to, read-only: the same lookups as resolveBaseImage, no pull, no bootstrap. */
export async function findLocalBase(
  engine: DockerEngine,
  base: ImageBase | BootstrapBase,
  epoch?: number,
): Promise<LocalBase> {
  const bootstrapped = async (b: BootstrapBase): Promise<LocalBase> => {
    const spec = await completeBootstrap(b);
    const { repo, tag } = bootstrapTag(spec, epoch);
    const found = await engine.inspectImage(`${repo}:${tag}`);
    return found
      ? { ref: `${repo}:${tag}`, id: found.Id }
      : { ref: `${repo}:${tag}`, would: `bootstrap ${spec.distro} ${spec.suite} from ${spec.mirror}` };
  };
  if (!('image' in base)) return bootstrapped(base);
  const local = await engine.inspectImage(base.image);
  if (local) return { ref: base.image, id: local.Id };
  return base.bootstrap
    ? { ...(await bootstrapped(base.bootstrap)), would: `pull ${base.image}, else bootstrap it` }
    : { ref: base.image, would: `pull ${base.image}` };
}
