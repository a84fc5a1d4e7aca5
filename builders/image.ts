import { ValidationError } from 'bareon';
import { findLocalBase, resolveBaseImage } from 'bareon/containers';
import { containerBuilder, detectPackageManager } from './common/container-builder.js';

/** Any base image; apt, apk or dnf is detected for `packages`. */
export default containerBuilder({
  name: 'image',
  summary: 'any container base image; installs packages with the apt, apk or dnf it finds',
  validate(profile) {
    if (!('image' in profile.base))
      throw new ValidationError('base: the image builder needs base.image', {
        hint: 'or use builder: debian with base: {distro, suite}',
      });
  },
  async findBase(engine, profile, objects) {
    return {
      ...(await findLocalBase(engine, profile.base, objects.epoch)),
      distro: 'image' in profile.base && /ubuntu/i.test(profile.base.image) ? 'ubuntu' : 'debian',
    };
  },
  async prepareBase(engine, profile, ctx) {
    const base = await resolveBaseImage(engine, profile.base, { onLine: (l) => ctx.log(l), signal: ctx.signal });
    const pm = await detectPackageManager(engine, base.id);
    return { ...base, pm, distro: 'image' in profile.base && /ubuntu/i.test(profile.base.image) ? 'ubuntu' : 'debian' };
  },
});
