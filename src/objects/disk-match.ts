import { z } from 'zod';
import { formatBytes, parseSize } from '../core/size.js';

const OPERATORS = ['>=', '<=', '==', '!=', '>', '<'] as const;
export type SizeOperator = (typeof OPERATORS)[number];

/** Parses a size hint: "60GiB" (exactly), ">= 60GiB", "< 2TB". Returns an error text on failure. */
export function parseSizeHint(text: string): { op: SizeOperator; bytes: number } | string {
  const t = text.trim();
  const op = OPERATORS.find((o) => t.startsWith(o)) ?? '==';
  const size = parseSize(t.slice(t.startsWith(op) ? op.length : 0).trim());
  if (typeof size === 'string') return `size hint ${JSON.stringify(text)}: ${size}`;
  if (size.kind !== 'bytes') return `size hint ${JSON.stringify(text)}: use an absolute size, such as ">= 60GiB"`;
  return { op, bytes: size.bytes };
}

const sizeHint = z.string().superRefine((v, ctx) => {
  const parsed = parseSizeHint(v);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

/**
 * Disk hints: which disk of the machine a layout disk is, by what does not change between boots
 * (instead of /dev/sdX names, which do). Every given hint must match.
 */
export const DiskMatchSchema = z
  .strictObject({
    serial: z.string().min(1),
    wwn: z.string().min(1),
    model: z.string().min(1),
    vendor: z.string().min(1),
    size: sizeHint,
    rotational: z.boolean(),
    by_path: z.string().min(1),
    name: z.string().min(1),
  })
  .partial()
  .refine((m) => Object.keys(m).length > 0, {
    message: 'give at least one hint: serial, wwn, model, vendor, size, rotational, by_path or name',
  });
export type DiskMatch = z.infer<typeof DiskMatchSchema>;

/** The attributes a hint is matched against (see src/host/disk-inventory.ts). */
export interface MatchableDisk {
  name: string;
  /** The device node, such as /dev/vda. */
  path: string;
  size: number;
  rotational: boolean;
  serial?: string;
  wwn?: string;
  model?: string;
  vendor?: string;
  /** The persistent path (udev's /dev/disk/by-path name, or the same derived from sysfs without udev). */
  by_path?: string;
}

const norm = (s: string) => s.trim().toLowerCase();
/** WWNs are compared without their "naa."/"eui."/"0x" prefixes. */
const bareWwn = (s: string) => norm(s).replace(/^(naa\.|eui\.|t10\.|0x)/, '');

function sizeMatches(bytes: number, hint: string): boolean {
  const h = parseSizeHint(hint);
  if (typeof h === 'string') return false;
  switch (h.op) {
    case '>=':
      return bytes >= h.bytes;
    case '<=':
      return bytes <= h.bytes;
    case '>':
      return bytes > h.bytes;
    case '<':
      return bytes < h.bytes;
    case '!=':
      return bytes !== h.bytes;
    case '==':
      return bytes === h.bytes;
  }
}

/** Whether `disk` satisfies every hint. Strings match whole and case-insensitively; `name` also as /dev/NAME. */
export function matchesHints(disk: MatchableDisk, hints: DiskMatch): boolean {
  const eq = (have: string | undefined, want: string | undefined) =>
    want === undefined || (have !== undefined && norm(have) === norm(want));
  return (
    eq(disk.serial, hints.serial) &&
    eq(disk.model, hints.model) &&
    eq(disk.vendor, hints.vendor) &&
    eq(disk.by_path, hints.by_path?.replace(/^\/dev\/disk\/by-path\//, '')) &&
    (hints.name === undefined || norm(hints.name.replace(/^\/dev\//, '')) === norm(disk.name)) &&
    (hints.wwn === undefined || (disk.wwn !== undefined && bareWwn(disk.wwn) === bareWwn(hints.wwn))) &&
    (hints.size === undefined || sizeMatches(disk.size, hints.size)) &&
    (hints.rotational === undefined || disk.rotational === hints.rotational)
  );
}

/** One line per disk with every attribute a hint can name, for errors and `bareon disks`. */
export function describeDisk(d: MatchableDisk): string {
  const attrs = [
    `size=${formatBytes(d.size)} (${d.size})`,
    `rotational=${d.rotational}`,
    ...(['serial', 'wwn', 'model', 'vendor', 'by_path'] as const).flatMap((k) => (d[k] ? [`${k}=${d[k]}`] : [])),
  ];
  return `${d.path}: ${attrs.join(' ')}`;
}

const formatHints = (h: DiskMatch) =>
  Object.entries(h)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`)
    .join(' ');

/**
 * The one disk that matches the hints; otherwise the error text, listing the disks seen with their
 * attributes (none match, or several do and the hints must say which).
 */
export function selectDisk<D extends MatchableDisk>(hints: DiskMatch, disks: D[]): D | string {
  const found = disks.filter((d) => matchesHints(d, hints));
  if (found.length === 1) return found[0];
  const seen = disks.length ? disks.map((d) => `  ${describeDisk(d)}`).join('\n') : '  (none)';
  return found.length === 0
    ? `no disk matches ${formatHints(hints)}; disks seen:\n${seen}`
    : `${found.length} disks match ${formatHints(hints)} (${found.map((d) => d.path).join(', ')}); add a hint that tells them apart. Disks seen:\n${seen}`;
}

/** Parses `--target-hint` values ("serial=ABC", "size=>=60GiB", "rotational=false") into hints. */
export function parseHintFlags(flags: string[]): DiskMatch | string {
  const raw: Record<string, unknown> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0)
      return `--target-hint ${JSON.stringify(flag)}: use KEY=VALUE, such as serial=ABC123 or size=">= 60GiB"`;
    const key = flag.slice(0, eq).trim();
    const value = flag.slice(eq + 1).trim();
    raw[key] =
      key === 'rotational'
        ? value === 'true' || value === '1'
          ? true
          : value === 'false' || value === '0'
            ? false
            : value
        : value;
  }
  const parsed = DiskMatchSchema.safeParse(raw);
  if (!parsed.success)
    return `--target-hint: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'hints'}: ${i.message}`).join('; ')}`;
  return parsed.data;
}
