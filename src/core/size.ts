const UNITS: Record<string, number> = {
  b: 1,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

export const MiB = 2 ** 20;

/** The largest size bareon takes: byte counts stay exact integers up to here (2^53 - 1). */
const MAX_BYTES = Number.MAX_SAFE_INTEGER;

/** A partition or disk size as written in a layout. */
export type SizeSpec = { kind: 'bytes'; bytes: number } | { kind: 'percent'; percent: number } | { kind: 'remaining' };

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/** Parses "512MiB", "2GB", "100%", "remaining" or a plain byte count. Returns an error text on failure. */
export function parseSize(input: string | number): SizeSpec | string {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0
      ? { kind: 'bytes', bytes: input }
      : `${input} is not a whole number of bytes`;
  }
  const text = input.trim();
  if (text === 'remaining') return { kind: 'remaining' };
  if (text.endsWith('%')) {
    const percent = Number(text.slice(0, -1));
    if (!Number.isFinite(percent) || percent <= 0 || percent > 100)
      return `"${input}": a percentage must be in (0, 100]`;
    return { kind: 'percent', percent };
  }
  const m = SIZE_RE.exec(text);
  if (!m) return `"${input}" is not a size; use a number with a unit such as 512MiB, 2GiB, 10GB, 50% or remaining`;
  const unit = m[2].toLowerCase() || 'b';
  const factor = UNITS[unit];
  if (factor === undefined) return `"${input}": unknown unit "${m[2]}"; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB`;
  const bytes = Math.round(Number(m[1]) * factor);
  if (bytes > MAX_BYTES) return `"${input}" is larger than bareon handles (${MAX_BYTES} bytes, 8 PiB)`;
  return { kind: 'bytes', bytes };
}

/** The byte count of an absolute size; undefined for `auto`, percentages and `remaining`. */
export function fixedBytes(size: 'auto' | SizeSpec): number | undefined {
  return size !== 'auto' && size.kind === 'bytes' ? size.bytes : undefined;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${i === 0 ? value : value.toFixed(1)} ${units[i]}`;
}

/** A layout size as written: "1.0 GiB", "50%" or "remaining". */
export function formatSizeSpec(size: SizeSpec): string {
  return size.kind === 'bytes' ? formatBytes(size.bytes) : size.kind === 'percent' ? `${size.percent}%` : 'remaining';
}
