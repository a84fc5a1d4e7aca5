import { BareonError } from '../core/errors.js';
import type { CleanupStack } from '../core/cleanup.js';
import type { Subtask, TaskIO } from '../plugins/types.js';
import { CACHE_KEY_LABEL, CACHE_PROFILE_LABEL, CACHE_STEP_LABEL, type DockerEngine } from '../docker/engine.js';
import { findCachedStep, stepKey } from './step-cache.js';
import { archiveStream, type BuildStep } from './build-step.js';
import type { StepOutcome } from '../objects/index.js';

/** The steps of a build and the content digests of their local inputs, by step index. */
export interface StepPlan {
  steps: BuildStep[];
  digests: Map<number, string>;
}

export interface StepRunOptions {
  engine: DockerEngine;
  plan: StepPlan;
  baseImage: string;
  baseKey: string;
  noCache: boolean;
  signal: AbortSignal;
  cleanup: CleanupStack;
  env?: Record<string, string>;
  /** The profile's name, recorded on cache images so `bareon gc --profile` can find them. */
  profile: string;
  /** Receives each outcome, and the final image after the last step. */
  onStep(outcome: StepOutcome): void;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** Runs one step in a container from `parent`, commits it under `key`, removes the container. */
export async function runStep(
  step: BuildStep,
  parent: string,
  key: string,
  io: Pick<TaskIO, 'log'>,
  opts: Pick<StepRunOptions, 'engine' | 'env' | 'cleanup' | 'signal' | 'profile'>,
  position: string,
): Promise<string> {
  const { engine } = opts;
  const mounts = step.cacheVolumes?.map((v) => ({ Type: 'volume' as const, Source: v.volume, Target: v.target }));
  const container = await engine.createContainer({
    image: parent,
    cmd: ['/bin/sh', '-ec', step.script],
    env: opts.env,
    labels: { 'org.bareon.role': 'build-step' },
    hostConfig: mounts ? { Mounts: mounts } : undefined,
  });
  const remove = opts.cleanup.defer(
    () => engine.removeContainer(container.id),
    `remove build container ${container.id.slice(0, 12)}`,
  );
  try {
    const archive = archiveStream(step);
    if (archive) await engine.putArchive(container.id, '/', archive);
    const result = await engine.start(container, {
      onLine: (line) => io.log(line),
      signal: opts.signal,
      tailLines: 30,
    });
    if (opts.signal.aborted) throw opts.signal.reason;
    if (result.exitCode !== 0) {
      throw new BareonError(`build step ${position} "${step.title}" failed with exit code ${result.exitCode}`, {
        details: `command:\n${step.script.replace(/^/gm, '  ')}\nlast lines of output:\n${result.tail.replace(/^/gm, '  ')}`,
        hint: step.kind === 'run' ? "fix the command in the profile's run list; earlier steps stay cached" : undefined,
      });
    }
    // Tagged, so that `docker image prune` does not take the cache for dangling images.
    const ref = { repo: `bareon-cache/${opts.profile.toLowerCase()}`, tag: key.slice(0, 16) };
    return await engine.commit(
      container.id,
      { [CACHE_KEY_LABEL]: key, [CACHE_STEP_LABEL]: step.title, [CACHE_PROFILE_LABEL]: opts.profile },
      ref,
    );
  } finally {
    await remove();
  }
}

/** The build's steps as subtasks: each a cache hit (reused image) or a container run and commit. */
export function stepSubtasks(opts: StepRunOptions): Subtask[] {
  let parent = opts.baseImage;
  let parentKey = opts.baseKey;
  const n = opts.plan.steps.length;
  return opts.plan.steps.map((step, i) => ({
    title: `${i + 1}/${n} ${step.title}`,
    async run(io) {
      const started = Date.now();
      const key = stepKey(parentKey, step, opts.plan.digests.get(i));
      const cached = opts.noCache ? undefined : await findCachedStep(opts.engine, key);
      const image = cached ?? (await runStep(step, parent, key, io, opts, `${i + 1}/${n}`));
      const ms = Date.now() - started;
      io.setTitle(`${i + 1}/${n} ${step.title} ${cached ? '(cached)' : `(${seconds(ms)})`}`);
      opts.onStep({ title: step.title, kind: step.kind, key, cached: Boolean(cached), image, ms });
      parent = image;
      parentKey = key;
    },
  }));
}
