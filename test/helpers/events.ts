/** Parses `--log-format json` output into events. */
export function jsonEvents(stdout: unknown): { event: string; task: string; [k: string]: unknown }[] {
  return String(stdout)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}
