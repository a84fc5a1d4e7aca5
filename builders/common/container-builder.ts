import path from 'node:path';
import {
  ValidationError,
  definePlugin,
  type Plugin,
  type PluginContext,
  type BuildRecord,
  type Objects,
  type Profile,
} from 'bareon';
import {
  DockerEngine,
  ContainerRootfs,
  DETECT_PACKAGE_MANAGER,
  PACKAGE_MANAGERS,
  type PackageManager,
  epochEnv,
  baseKey,
  findCachedStep,
  stepKey,
  type LocalBase,
  stepSubtasks,
  type StepPlan,
} from 'bareon/containers';
import { planSteps } from './steps.js';

/** A base image ready for the steps: its id, package manager and distro family. */
export interface PreparedBase {
  ref: string;
  id: string;
  pm: PackageManager;
  distro: 'debian' | 'ubuntu';
  how: string;
}

export function requireProfile(objects: Objects): Profile {
  if (!objects.profile) throw new ValidationError('builders need a profile (run them through bareon-build PROFILE)');
  return objects.profile;
}

/** Each step's cache key and cached image (if any), as the step runner would find them. Read-only. */
async function stepCacheView(
  engine: DockerEngine,
  plan: StepPlan,
  base: string,
): Promise<{ steps: { title: string; key: string; image?: string }[]; hits: number }> {
  let parent = base;
  const steps = plan.steps.map((step, i) => {
    parent = stepKey(parent, step, plan.digests.get(i));
    return { title: step.title, key: parent };
  });
  const images = await Promise.all(steps.map((st) => findCachedStep(engine, st.key)));
  return { steps: steps.map((st, i) => ({ ...st, image: images[i] })), hits: images.filter(Boolean).length };
}

/** Runs DETECT_PACKAGE_MANAGER in the image. */
export async function detectPackageManager(engine: DockerEngine, image: string): Promise<PackageManager> {
  const result = await engine.run({
    image,
    cmd: ['/bin/sh', '-c', DETECT_PACKAGE_MANAGER],
    labels: { 'org.bareon.role': 'detect' },
  });
  const name = result.stdout.trim() as keyof typeof PACKAGE_MANAGERS;
  const pm = PACKAGE_MANAGERS[name];
  if (!pm)
    throw new ValidationError(`image ${image} has no apt-get, apk or dnf`, {
      hint: 'use a base image with a package manager, or leave packages empty',
    });
  return pm;
}

/**
 * A builder plugin: resolve a base image, then run the profile's steps in containers with the step
 * cache, and publish the result as `objects.rootfs`. Builders differ only in how they get the base.
 */
export function containerBuilder(spec: {
  name: string;
  summary: string;
  validate?(profile: Profile, objects: Objects): void | Promise<void>;
  prepareBase(engine: DockerEngine, profile: Profile, ctx: PluginContext): Promise<PreparedBase>;
  /**
   * For --dry-run: the base the build would start from, found read-only, with its package manager
   * when the builder knows it without running a container. Absent: the base is made by the build.
   */
  findBase?(
    engine: DockerEngine,
    profile: Profile,
    objects: Objects,
  ): Promise<LocalBase & { pm?: PackageManager; distro: 'debian' | 'ubuntu' }>;
}): Plugin {
  return definePlugin({
    reads: ['profile', 'profileFile', 'epoch', 'layout', 'outDir', 'target'],
    writes: ['rootfs', 'build'],
    summary: spec.summary,
    async describe(objects, _options, flags) {
      const profile = requireProfile(objects);
      if (!spec.findBase) return [`steps: their cache keys follow from the base, which the build makes first`];
      const engine = await DockerEngine.connect('dry-run').catch((err: Error) => err);
      if (engine instanceof Error)
        return [`steps: cache keys need the container engine (${engine.message.split('\n')[0]})`];
      const base = await spec.findBase(engine, profile, objects);
      const planFor = (pm: PackageManager) =>
        planSteps(profile, {
          profileDir: path.dirname(objects.profileFile ?? '.'),
          pm,
          distro: base.distro,
          layout: objects.layout,
        });
      if (!base.id) {
        const plan = await planFor(base.pm ?? PACKAGE_MANAGERS.apt);
        return [
          `base: ${base.ref}: not local; the build would ${base.would}`,
          ...plan.steps.map((st, i) => `${i + 1}/${plan.steps.length} ${st.title}: run`),
        ];
      }
      // the package manager is part of the keys; a builder that detects it at run time is matched by the cache
      const candidates = await Promise.all(
        (base.pm ? [base.pm] : Object.values(PACKAGE_MANAGERS)).map(async (pm) =>
          stepCacheView(engine, await planFor(pm), baseKey(base.id!, objects.epoch)),
        ),
      );
      const view = candidates.find((c) => c.hits > 0) ?? (candidates.length === 1 ? candidates[0] : undefined);
      const lines = [
        `base: ${base.ref} (${base.id.slice(7, 19)})${objects.epoch === undefined ? '' : `, SOURCE_DATE_EPOCH ${objects.epoch}`}`,
      ];
      if (!view) return [...lines, 'steps: none cached; the package manager is detected when the build runs'];
      const n = view.steps.length;
      lines.push(
        ...view.steps.map(
          (st, i) =>
            `${i + 1}/${n} ${st.title}: key ${st.key.slice(0, 12)}, ${flags.noCache ? 'run (--no-cache)' : st.image ? `cached (${st.image.slice(7, 19)})` : 'run'}`,
        ),
      );
      lines.push(
        flags.noCache
          ? `steps: all ${n} run (--no-cache)`
          : `steps: ${view.hits} of ${n} cached, ${n - view.hits} to run`,
      );
      return lines;
    },
    async validate(objects) {
      const profile = requireProfile(objects);
      if (!objects.outDir && !objects.target)
        throw new ValidationError('a build needs an output directory or a target');
      await spec.validate?.(profile, objects);
    },
    async run(ctx) {
      const profile = requireProfile(ctx.objects);
      const engine = await DockerEngine.forRun(ctx.runId, ctx.cleanup);
      ctx.log('resolving the base image');
      const base = await spec.prepareBase(engine, profile, ctx);
      ctx.setTitle(`build ${profile.name} with ${spec.name} from ${base.ref} (${base.how})`);
      const plan = await planSteps(profile, {
        profileDir: path.dirname(ctx.objects.profileFile ?? '.'),
        pm: base.pm,
        distro: base.distro,
        layout: ctx.objects.layout,
      });
      const record: BuildRecord = { builder: spec.name, baseImage: base.id, packageManager: base.pm.name, steps: [] };
      ctx.objects.build = record;
      let image = base.id;
      const steps = stepSubtasks({
        engine,
        plan,
        baseImage: base.id,
        baseKey: baseKey(base.id, ctx.objects.epoch),
        env: epochEnv(ctx.objects.epoch),
        noCache: ctx.flags.noCache,
        profile: profile.name,
        signal: ctx.signal,
        cleanup: ctx.cleanup,
        onStep: (outcome) => {
          record.steps.push(outcome);
          image = outcome.image;
        },
      });
      return [
        ...steps,
        {
          title: 'root filesystem',
          async run(io) {
            const info = await engine.inspectImage(image);
            const identity = {
              hostname: profile.hostname ?? 'localhost',
              hygiene: profile.hygiene,
              epoch: ctx.objects.epoch,
            };
            ctx.objects.rootfs = new ContainerRootfs(engine, image, identity, ctx.cleanup, info?.Size);
            io.setTitle(
              `root filesystem: image ${image.slice(7, 19)}, ${((info?.Size ?? 0) / 2 ** 20).toFixed(0)} MiB`,
            );
          },
        },
      ];
    },
  });
}
