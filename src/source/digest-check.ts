import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { BareonError } from '../core/errors.js';

/**
 * Passes a source's stored bytes through, hashing them with sha512; when they end, fails the
 * stream unless they hashed to `expected`. The write downstream then fails before it is committed,
 * as with a sha256 mismatch. `checked()` tells whether the bytes were seen to their end.
 */
export function sha512Check(expected: string, uri: string): Transform & { checked(): boolean } {
  const hash = createHash('sha512');
  let done = false;
  const stage = new Transform({
    transform(chunk: Buffer, _enc, next) {
      hash.update(chunk);
      next(null, chunk);
    },
    flush(next) {
      const got = hash.digest('hex');
      if (got !== expected)
        return next(
          new BareonError(`source ${uri}: checksum mismatch: sha512 ${got}, expected ${expected}`, {
            hint: 'the image is corrupt or not the one named; the target was not left bootable',
          }),
        );
      done = true;
      next();
    },
  });
  return Object.assign(stage, { checked: () => done });
}
