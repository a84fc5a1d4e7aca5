import { z } from 'zod';
import { parseSize, type SizeSpec } from '../core/size.js';

/** zod type for a size field; `remaining` and `%` only where `allowRelative` is set. */
export function sizeField(opts: { allowRelative: boolean }) {
  return z.union([z.string(), z.number()]).transform((value, ctx): SizeSpec => {
    const parsed = parseSize(value);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    if (!opts.allowRelative && parsed.kind !== 'bytes') {
      ctx.addIssue({ code: 'custom', message: `"${value}" must be an absolute size such as 4GiB` });
      return z.NEVER;
    }
    return parsed;
  });
}
