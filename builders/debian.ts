import { ValidationError, type Profile } from 'bareon';
import { findLocalBase, resolveBaseImage, PACKAGE_MANAGERS } from 'bareon/containers';
import { containerBuilder } from './common/container-builder.js';

const distroOf = (profile: Profile): 'debian' | 'ubuntu' =>
  'distro' in profile.base ? profile.base.distro : /ubuntu/i.test(profile.base.image) ? 'ubuntu' : 'debian';

/** Debian and Ubuntu with apt: a bootstrapped (mmdebstrap) or existing base image. */
export default containerBuilder({
  name: 'debian',
  summary: 'Debian or Ubuntu root filesystem with apt, from an mmdebstrap bootstrap or a base image',
  validate(profile) {
    if ('image' in profile.base && /alpine|fedora|rocky|alma|centos/i.test(profile.base.image)) {
      throw new ValidationError(
        `builder: the debian builder needs a Debian or Ubuntu base, not ${profile.base.image}`,
        { hint: 'use builder: image for other distributions' },
      );
    }
  },
  async findBase(engine, profile, objects) {
    const base = await findLocalBase(engine, profile.base, objects.epoch);
    return { ...base, pm: PACKAGE_MANAGERS.apt, distro: distroOf(profile) };
  },
  async prepareBase(engine, profile, ctx) {
    const base = await resolveBaseImage(engine, profile.base, {
      onLine: (l) => ctx.log(l),
      signal: ctx.signal,
      epoch: ctx.objects.epoch,
    });
    return { ...base, pm: PACKAGE_MANAGERS.apt, distro: distroOf(profile) };
  },
});
