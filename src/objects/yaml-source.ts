import { readFile } from 'node:fs/promises';
import type { Document, LineCounter } from 'yaml';
import type { z } from 'zod';
import { lazyPackage } from '../core/lazy-package.js';
import { ValidationError } from '../core/errors.js';
import { didYouMean } from '../core/suggest.js';
import { knownKeysAt } from './schema-keys.js';

/** The YAML parser loads with the first document read: a command that reads none (a whole-disk deploy) never loads it. */
const yaml = lazyPackage<typeof import('yaml')>('yaml');

/** A parsed YAML document that can point back at the line and column of any field. */
export class YamlSource {
  private constructor(
    readonly file: string,
    readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  static parse(file: string, text: string): YamlSource {
    const { LineCounter, parseDocument } = yaml();
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const source = new YamlSource(file, doc, lines);
    if (doc.errors.length > 0) {
      const first = doc.errors[0];
      const pos = lines.linePos(first.pos[0]);
      throw new ValidationError(`${file}:${pos.line}:${pos.col}: invalid YAML: ${first.message.split('\n')[0]}`, {
        hint: 'check indentation and quoting near that line',
      });
    }
    return source;
  }

  static async load(file: string): Promise<YamlSource> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ValidationError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
        cause: err,
      });
    }
    return YamlSource.parse(file, text);
  }

  /** The document as plain data; aliases that expand into too many copies (an "alias bomb") are a ValidationError. */
  toJS(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: 100 }) ?? {};
    } catch (err) {
      throw new ValidationError(`${this.file}: invalid YAML: ${(err as Error).message.split('\n')[0]}`, {
        hint: 'aliases (*name) expand into copies of what they name; this file expands into too many. Write the values out, or use fewer aliases',
      });
    }
  }

  /** "file:line:col" of the deepest node that exists along `path`; with `key`, of that key inside it. */
  locate(path: PropertyKey[], key?: string): string {
    const { isMap, isNode } = yaml();
    let node: unknown = this.doc.contents;
    let range = (node as { range?: [number, number, number] })?.range;
    for (const segment of path) {
      if (!isNode(node)) break;
      const child = (node as { get?: (k: unknown, keep: boolean) => unknown }).get?.(segment, true);
      if (!isNode(child)) {
        const pair = isMap(node)
          ? node.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === segment)
          : undefined;
        if (pair && isNode(pair.key)) range = pair.key.range ?? range;
        break;
      }
      node = child;
      range = child.range ?? range;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === key);
      if (pair && isNode(pair.key) && pair.key.range) range = pair.key.range;
    }
    const pos = this.lines.linePos(range?.[0] ?? 0);
    return `${this.file}:${pos.line}:${pos.col}`;
  }
}

const origins = new WeakMap<object, { source: YamlSource; prefix: PropertyKey[] }>();

/** Remembers which document (and where in it) a parsed value came from, for later error messages. */
export function rememberOrigin(value: object, source: YamlSource, prefix: PropertyKey[] = []): void {
  origins.set(value, { source, prefix });
}

/**
 * "file:line:col path" of `path` inside a value parsed from YAML (see rememberOrigin), for errors
 * found after parsing; `fallback` (usually the file name) for values that came from elsewhere.
 */
export function locateIn(value: object, path: PropertyKey[], fallback: string): string {
  const origin = origins.get(value);
  return origin
    ? `${origin.source.locate([...origin.prefix, ...path])}: ${formatPath([...origin.prefix, ...path])}`
    : `${fallback}: ${formatPath(path)}`;
}

/** "disks[0].partitions[1].size" */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
    '',
  );
}

/** Turns zod issues into one ValidationError that names file, line, column, field and the fix. */
export function issuesToError(
  issues: readonly z.core.$ZodIssue[],
  schema: z.ZodType,
  where: { source?: YamlSource; label: string; prefix?: PropertyKey[] },
): ValidationError {
  const prefix = where.prefix ?? [];
  const lines: string[] = [];
  const hints: string[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const at = where.source ? where.source.locate(path, key) : where.label;
        const field = formatPath([...path, key]);
        const known = knownKeysAt(schema, issue.path);
        const guess = didYouMean(key, known);
        lines.push(`${at}: ${field}: unknown key${guess ? ` (did you mean "${guess}"?)` : ''}`);
        hints.push(guess ? `rename "${key}" to "${guess}"` : `remove "${key}"; known keys here: ${known.join(', ')}`);
      }
      continue;
    }
    const at = where.source ? where.source.locate(path) : where.label;
    const field = formatPath(path) || '(top level)';
    lines.push(`${at}: ${field}: ${describeIssue(issue)}`);
  }
  return new ValidationError(lines.length === 1 ? lines[0] : `${where.label} is invalid:\n  ${lines.join('\n  ')}`, {
    hint: hints.length > 0 ? hints.join('; ') : undefined,
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') {
    const got = (issue as { input?: unknown }).input;
    const gotType =
      got === undefined
        ? 'nothing (the field is missing)'
        : Array.isArray(got)
          ? 'a list'
          : got === null
            ? 'null'
            : typeof got;
    return `expected ${issue.expected}, got ${gotType}`;
  }
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return issue.message;
}

/** Parses `value` with `schema`; on failure throws an error that points into `source`. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: { source?: YamlSource; label: string; prefix?: PropertyKey[] },
): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw issuesToError(result.error.issues, schema, where);
}
