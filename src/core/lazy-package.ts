import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A package loaded when first used instead of with the module that names it, so that a command which
 * never calls into it does not pay for loading it (a whole-disk deploy reads no YAML and writes no tar).
 * It is the instance an `import` gets: a CommonJS package (yaml, tar-stream) through require's cache,
 * an ES module package with a single entry (execa) through require(esm) into the same module map. Not
 * for packages whose require and import entries differ (zod): those would load twice.
 */
export function lazyPackage<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(name) as T;
    return loaded;
  };
}
