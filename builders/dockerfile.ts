import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ValidationError } from 'bareon';
import { CACHE_KEY_LABEL, CACHE_PROFILE_LABEL, entriesFromLocal, packEntries } from 'bareon/containers';
import { containerBuilder, detectPackageManager } from './common/container-builder.js';

/** `profile.dockerfile` resolved against the profile's directory. */
const dockerfilePath = (profileFile: string | undefined, dockerfile: string) =>
  path.resolve(path.dirname(profileFile ?? '.'), dockerfile);

/** The Engine's build API on a Dockerfile (its directory is the context), then the common steps. */
export default containerBuilder({
  name: 'dockerfile',
  summary: "builds a Dockerfile through the Engine's build API, then applies the profile's steps",
  async validate(profile, objects) {
    if (!profile.dockerfile)
      throw new ValidationError(
        'dockerfile: the dockerfile builder needs a dockerfile: path (relative to the profile)',
      );
    const file = dockerfilePath(objects.profileFile, profile.dockerfile);
    if (!(await stat(file).catch(() => undefined))?.isFile())
      throw new ValidationError(`dockerfile: ${file} does not exist`);
  },
  async prepareBase(engine, profile, ctx) {
    const file = dockerfilePath(ctx.objects.profileFile, profile.dockerfile!);
    const context = path.dirname(file);
    const entries = (await entriesFromLocal(context, '/', 'dockerfile context')).filter((e) => e.path !== '');
    const id = await engine.buildImage(packEntries(entries), {
      tag: `bareon/dockerfile-${profile.name}:latest`,
      dockerfile: path.basename(file),
      labels: { [CACHE_KEY_LABEL]: `dockerfile:${profile.name}`, [CACHE_PROFILE_LABEL]: profile.name },
      onLine: (l) => ctx.log(l),
    });
    const pm = await detectPackageManager(engine, id);
    return { ref: `bareon/dockerfile-${profile.name}`, id, pm, distro: 'debian', how: 'built' };
  },
});
