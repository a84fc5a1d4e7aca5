import type { z } from 'zod';
import { ValidationError } from '../core/errors.js';
import type { Objects } from './index.js';

/**
 * A typed place in the shared objects that a plugin declares for itself, under its package's name
 * ("bareon-plugin-motd/banner"). Values are checked with the slot's schema when set, so every reader
 * gets what the schema says.
 */
export interface Slot<T> {
  readonly name: string;
  readonly schema: z.ZodType<T>;
  /** The value, parsed by the schema again (for an object schema, a copy: set it again to change it). */
  get(objects: Objects): T | undefined;
  /** Checks `value` with the schema and stores what it parses to; a mismatch is a ValidationError. */
  set(objects: Objects, value: T): T;
}

/** `<package>/<name>`, the package name possibly scoped. */
export const SLOT_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*$/;

/** Declares a slot named `<package>/<name>`, its values described by `schema`. */
export function defineSlot<T>(name: string, schema: z.ZodType<T>): Slot<T> {
  if (!SLOT_NAME.test(name))
    throw new ValidationError(`slot "${name}": name it <package>/<name>, such as bareon-plugin-motd/banner`);
  const values = (objects: Objects) => {
    objects.slots ??= new Map();
    return objects.slots;
  };
  return {
    name,
    schema,
    get(objects) {
      if (!objects.slots?.has(name)) return undefined;
      // set() stored only what the schema parsed
      return schema.parse(objects.slots.get(name));
    },
    set(objects, value) {
      const parsed = schema.safeParse(value);
      if (!parsed.success)
        throw new ValidationError(
          `slot ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`,
        );
      values(objects).set(name, parsed.data);
      return parsed.data;
    },
  };
}
