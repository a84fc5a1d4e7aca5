import { ValidationError, type Objects, type Profile } from 'bareon';

/** An exporter's precondition: a profile (its name names the files) and an output directory. */
export function requireBuildOutput(objects: Objects, who: string): { outDir: string; profile: Profile } {
  if (!objects.profile || !objects.outDir)
    throw new ValidationError(`${who}: needs a profile and an output directory (bareon-build PROFILE -o DIR)`);
  return { outDir: objects.outDir, profile: objects.profile };
}
