import type { z } from 'zod';

/** The parts of a zod 4 schema definition this walk reads. */
interface AnyDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
}
const defOf = (s: unknown): AnyDef => (s as { _zod: { def: AnyDef } })._zod.def;

/** The schemas reached by following `path` into `schema`, through optionals, defaults, arrays, unions and pipes. */
function schemasAt(schema: z.ZodType, path: PropertyKey[]): z.ZodType[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
      return schemasAt(def.innerType!, path);
    case 'pipe':
      return schemasAt(def.in!, path);
    case 'union':
      return def.options!.flatMap((o) => schemasAt(o, path));
  }
  if (path.length === 0) return [schema];
  const [head, ...rest] = path;
  if (def.type === 'object') {
    const shape = def.shape!;
    return typeof head === 'string' && head in shape ? schemasAt(shape[head], rest) : [];
  }
  if (def.type === 'array' && typeof head === 'number') return schemasAt(def.element!, rest);
  return [];
}

/** The keys an object schema accepts at `path`, used for "did you mean" hints. */
export function knownKeysAt(schema: z.ZodType, path: PropertyKey[]): string[] {
  const keys = new Set<string>();
  for (const s of schemasAt(schema, path)) {
    const def = defOf(s);
    if (def.type === 'object') for (const k of Object.keys(def.shape!)) keys.add(k);
  }
  return [...keys];
}
