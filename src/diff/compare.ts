import type { InstalledPackage } from '../objects/artifact.js';
import type { TreeEntry } from './tree-index.js';

/** A path whose entry differs between A and B, with the fields that differ ("content" for data). */
export interface ChangedEntry {
  path: string;
  changes: { field: string; a: string; b: string }[];
}

export interface TreeDiff {
  added: { path: string; entry: TreeEntry }[];
  removed: { path: string; entry: TreeEntry }[];
  changed: ChangedEntry[];
}

export interface PackageDiff {
  added: InstalledPackage[];
  removed: InstalledPackage[];
  changed: { name: string; a: string; b: string }[];
}

const octal = (mode: number) => mode.toString(8).padStart(4, '0');
const isoTime = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');

/** The fields `bareon diff` shows for an entry, in the order it shows them. */
const FIELDS: { field: string; show(e: TreeEntry): string }[] = [
  { field: 'type', show: (e) => e.type },
  { field: 'mode', show: (e) => octal(e.mode) },
  { field: 'owner', show: (e) => `${e.uid}:${e.gid}` },
  { field: 'size', show: (e) => String(e.size) },
  { field: 'content', show: (e) => e.digest?.slice(0, 12) ?? '' },
  { field: 'link', show: (e) => e.linkname ?? '' },
  { field: 'xattrs', show: (e) => e.xattrs?.slice(0, 12) ?? '' },
  { field: 'mtime', show: (e) => isoTime(e.mtime) },
];

/** Entries added, removed and changed from tree A to tree B, sorted by path. */
export function diffTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>): TreeDiff {
  const diff: TreeDiff = { added: [], removed: [], changed: [] };
  for (const [path, ea] of a) {
    const eb = b.get(path);
    if (!eb) {
      diff.removed.push({ path, entry: ea });
      continue;
    }
    const changes = FIELDS.filter((f) => f.show(ea) !== f.show(eb)).map((f) => ({
      field: f.field,
      a: f.show(ea),
      b: f.show(eb),
    }));
    if (changes.length) diff.changed.push({ path, changes });
  }
  for (const [path, entry] of b) if (!a.has(path)) diff.added.push({ path, entry });
  const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);
  diff.added.sort(byPath);
  diff.removed.sort(byPath);
  diff.changed.sort(byPath);
  return diff;
}

/** Packages added, removed and changed in version (by name and architecture). */
export function diffPackages(a: InstalledPackage[], b: InstalledPackage[]): PackageDiff {
  const key = (p: InstalledPackage) => `${p.name}:${p.arch}`;
  const inA = new Map(a.map((p) => [key(p), p]));
  const inB = new Map(b.map((p) => [key(p), p]));
  return {
    added: b.filter((p) => !inA.has(key(p))),
    removed: a.filter((p) => !inB.has(key(p))),
    changed: b.flatMap((p) => {
      const old = inA.get(key(p));
      return old && old.version !== p.version ? [{ name: p.name, a: old.version, b: p.version }] : [];
    }),
  };
}

/** One line per entry: "+ path  type mode owner size", "- path", "~ path  field a → b, …". */
export function formatTreeDiff(diff: TreeDiff, limit = Infinity): string[] {
  const describe = (e: TreeEntry) =>
    `${e.type} ${octal(e.mode)} ${e.uid}:${e.gid}${e.type === 'file' ? ` ${e.size} B` : ''}${e.linkname ? ` → ${e.linkname}` : ''}`;
  const lines = [
    ...diff.added.map((x) => `+ ${x.path}  ${describe(x.entry)}`),
    ...diff.removed.map((x) => `- ${x.path}  ${describe(x.entry)}`),
    ...diff.changed.map(
      (x) =>
        `~ ${x.path}  ${x.changes.map((c) => (c.field === 'content' ? `content ${c.a} → ${c.b}` : `${c.field} ${c.a} → ${c.b}`)).join(', ')}`,
    ),
  ];
  return lines.length > limit ? [...lines.slice(0, limit), `… and ${lines.length - limit} more`] : lines;
}

export function formatPackageDiff(diff: PackageDiff): string[] {
  return [
    ...diff.added.map((p) => `+ ${p.name} ${p.version} (${p.arch})`),
    ...diff.removed.map((p) => `- ${p.name} ${p.version} (${p.arch})`),
    ...diff.changed.map((p) => `~ ${p.name} ${p.a} → ${p.b}`),
  ];
}
