import { ValidationError } from '../src/core/errors.js';
import { findLocalBase, resolveBaseImage } from '../src/docker/base-image.js';
import type { Profile } from '../src/objects/index.js';
import { containerBuilder } from './common/container-builder.js';
import { PACKAGE_MANAGERS } from '../src/build/package-manager.js';

const distroOf = (profile: Profile): 'debian' | 'ubuntu' => ('distro' in profile.base ? profile.base.distro : /ubuntu/i.test(profile.base.image) ? 'ubuntu' : 'debian');

/** Debian and Ubuntu with apt: a bootstrapped (mmdebstrap) or existing base image. */
export default containerBuilder({
  name: 'debian',
  summary: 'Debian or Ubuntu root filesystem with apt, from an mmdebstrap bootstrap or a base image',
  validate(profile) {
    if ('image' in profile.base && /alpine|fedora|rocky|alma|centos/i.test(profile.base.image)) {
      throw new ValidationError(`builder: the debian builder needs a Debian or Ubuntu base, not ${profile.base.image}`, { hint: 'use builder: image for other distributions' });
    }
  },
  async findBase(engine, profile, objects) {
    const base = await findLocalBase(engine, profile.base, objects.epoch);
    return { ...base, pm: PACKAGE_MANAGERS.apt, distro: distroOf(profile) };
  },
  async prepareBase(engine, profile, ctx) {
    const base = await resolveBaseImage(engine, profile.base, { onLine: (l) => ctx.log(l), signal: ctx.signal, epoch: ctx.objects.epoch });
    return { ...base, pm: PACKAGE_MANAGERS.apt, distro: distroOf(profile) };
  },
});
