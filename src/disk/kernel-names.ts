/** Newest-version-last sort of "vmlinuz-6.1.0-9-amd64"-style names. */
export const byVersion = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/** The newest of some names that start with `prefix` ("vmlinuz-", "initrd.img-"), if any. */
export function newestWithPrefix(names: Iterable<string>, prefix: string): string | undefined {
  return [...names]
    .filter((n) => n.startsWith(prefix))
    .sort(byVersion)
    .pop();
}
