import { ValidationError } from '../core/errors.js';

/**
 * The build's fixed time (seconds since 1970), as reproducible builds define it: `SOURCE_DATE_EPOCH`
 * from the environment, else the profile's `epoch:`. Undefined when neither is set (timestamps are
 * then the build's own). The environment wins, as rebuilders set it for every tool of a build.
 */
export function resolveEpoch(
  profileEpoch: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
  label = 'the profile',
): { epoch?: number; from?: string } {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw !== undefined && raw !== '') {
    if (!/^\d{1,12}$/.test(raw.trim())) {
      throw new ValidationError(`SOURCE_DATE_EPOCH=${JSON.stringify(raw)} is not a number of seconds since 1970`, {
        hint: 'set it to an integer such as $(git log -1 --format=%ct), or unset it',
      });
    }
    return { epoch: Number(raw.trim()), from: 'SOURCE_DATE_EPOCH' };
  }
  return profileEpoch === undefined ? {} : { epoch: profileEpoch, from: `${label} epoch:` };
}

/** The environment that makes tools inside a build step use the epoch (shadow's dates, for example). */
export function epochEnv(epoch: number | undefined): Record<string, string> | undefined {
  return epoch === undefined ? undefined : { SOURCE_DATE_EPOCH: String(epoch) };
}

/** An ISO date for records (the manifest), the epoch's when one is set. */
export function recordDate(epoch: number | undefined): string {
  return new Date(epoch === undefined ? Date.now() : epoch * 1000).toISOString();
}
