import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileSha256 } from '../../core/digest.js';
import { ExitCode, ValidationError } from '../../core/errors.js';
import type { DiskExecutor } from '../../core/disk-executor.js';
import { diffPackages, diffTrees, formatPackageDiff, formatTreeDiff } from '../../diff/compare.js';
import { differingRanges, type ByteRange } from '../../diff/disk-ranges.js';
import { ext4Owners } from '../../diff/ext4-owners.js';
import { indexTree } from '../../diff/tree-index.js';
import { HostExecutor } from '../../host/executor.js';
import { ManifestSchema, parseWith, type Manifest } from '../../objects/index.js';
import { formatBytes } from '../../core/size.js';
import { isCycloneDx, sbomComponents, type SbomFile } from '../../rootfs/sbom.js';
import { decompressHead, decompressor } from '../../source/decompress.js';
import { tableFromHead } from '../../source/head-table.js';
import { detectCompression, detectContent } from '../../source/magic.js';
import type { Compression } from '../../objects/deploy.js';
import type { Session } from '../session.js';

type Kind = 'tar' | 'disk' | 'qcow2' | 'ext4' | 'manifest' | 'sbom';

interface Input {
  file: string;
  kind: Kind;
  compression?: Compression;
  size: number;
}

/** What a file holds, from its magic bytes (decompressed when compressed). */
async function classify(file: string): Promise<Input> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile())
    throw new ValidationError(`${file}: no such file`, {
      hint: 'bareon diff compares two local artifacts or two manifests',
    });
  const fh = await open(file, 'r');
  const head = Buffer.alloc(64 * 1024);
  const { bytesRead } = await fh.read(head, 0, head.length, 0).finally(() => fh.close());
  if (isCycloneDx(head.subarray(0, bytesRead).toString('utf8'))) return { file, kind: 'sbom', size: info.size };
  const compression = detectCompression(head.subarray(0, bytesRead));
  const content = detectContent(
    compression ? await decompressHead(compression, head.subarray(0, bytesRead)) : head.subarray(0, bytesRead),
  );
  if (content === 'unknown')
    throw new ValidationError(`${file}: not a tarball, disk image, ext4 image, bareon manifest or CycloneDX SBOM`, {
      hint: 'give two artifacts of bareon-build, two manifests or two SBOMs',
    });
  if (compression && content !== 'tar')
    throw new ValidationError(`${file}: a compressed ${content} image; bareon diff reads disk images uncompressed`, {
      hint: `decompress it first (for example zstd -d --sparse ${file})`,
    });
  return { file, kind: content, compression, size: info.size };
}

function openContent(input: Input): Readable {
  const raw = createReadStream(input.file, { highWaterMark: 1024 * 1024 });
  return input.compression ? raw.pipe(decompressor(input.compression, undefined, input.file)) : raw;
}

const section = (title: string, lines: string[]) => (lines.length ? [`${title}:`, ...lines.map((l) => `  ${l}`)] : []);

async function diffTarballs(a: Input, b: Input, limit: number): Promise<string[]> {
  const [ia, ib] = await Promise.all([indexTree(openContent(a)), indexTree(openContent(b))]);
  const files = diffTrees(ia.entries, ib.entries);
  const packages = diffPackages(ia.packages ?? [], ib.packages ?? []);
  const counts = `${files.added.length} added, ${files.removed.length} removed, ${files.changed.length} changed (of ${ia.entries.size} and ${ib.entries.size} entries)`;
  const lines = [
    `files: ${counts}`,
    ...formatTreeDiff(files, limit).map((l) => `  ${l}`),
    ...section('packages', formatPackageDiff(packages)),
  ];
  if (!files.added.length && !files.removed.length && !files.changed.length)
    lines.push('the trees hold the same entries; the bytes differ in tar framing or compression only');
  return lines;
}

function diffManifests(a: Manifest, b: Manifest): string[] {
  const fields: [string, unknown, unknown][] = [
    ['name', a.name, b.name],
    ['created', a.created, b.created],
    ['epoch', a.epoch, b.epoch],
    ['profile digest', a.profile_digest, b.profile_digest],
    ['base image', a.base_image, b.base_image],
    ['image', a.image, b.image],
    ['builder', a.builder, b.builder],
  ];
  const changed = fields
    .filter(([, x, y]) => x !== y)
    .map(([f, x, y]) => `~ ${f}: ${String(x ?? '-')} → ${String(y ?? '-')}`);
  const formats = [...new Set([...a.artifacts, ...b.artifacts].map((x) => x.format))];
  const artifacts = formats.flatMap((format) => {
    const x = a.artifacts.find((y) => y.format === format);
    const y = b.artifacts.find((z) => z.format === format);
    if (!x) return [`+ ${format} ${y!.uri} sha256 ${y!.sha256.slice(0, 12)}`];
    if (!y) return [`- ${format} ${x.uri} sha256 ${x.sha256.slice(0, 12)}`];
    return x.sha256 === y.sha256
      ? [`= ${format} sha256 ${x.sha256.slice(0, 12)}`]
      : [
          `~ ${format} sha256 ${x.sha256.slice(0, 12)} → ${y.sha256.slice(0, 12)} (bareon diff the two files for what changed)`,
        ];
  });
  const removedA = new Set(a.hygiene?.removed ?? []);
  const removedB = new Set(b.hygiene?.removed ?? []);
  const hygiene = [
    ...[...removedB].filter((r) => !removedA.has(r)).map((r) => `+ removed ${r}`),
    ...[...removedA].filter((r) => !removedB.has(r)).map((r) => `- removed ${r}`),
  ];
  return [
    ...section('manifest', changed),
    ...section('artifacts', artifacts),
    ...section('packages', formatPackageDiff(diffPackages(a.packages, b.packages))),
    ...section('hygiene', hygiene),
  ];
}

/** Two SBOMs: their packages (by name and architecture) and the artifacts they list (by format). */
function diffSboms(a: string, b: string, fileA: string, fileB: string): string[] {
  const [x, y] = [sbomComponents(a, fileA), sbomComponents(b, fileB)];
  const key = (f: SbomFile) => f.format || f.name;
  const keys = [...new Set([...x.files, ...y.files].map(key))];
  const files = keys.flatMap((k) => {
    const fa = x.files.find((f) => key(f) === k);
    const fb = y.files.find((f) => key(f) === k);
    if (!fa) return [`+ ${k} ${fb!.name} sha256 ${fb!.sha256.slice(0, 12)}`];
    if (!fb) return [`- ${k} ${fa.name} sha256 ${fa.sha256.slice(0, 12)}`];
    return fa.sha256 === fb.sha256 ? [] : [`~ ${k} sha256 ${fa.sha256.slice(0, 12)} → ${fb.sha256.slice(0, 12)}`];
  });
  const packages = diffPackages(x.packages, y.packages);
  return [
    `packages: ${packages.added.length} added, ${packages.removed.length} removed, ${packages.changed.length} changed (of ${x.packages.length} and ${y.packages.length})`,
    ...formatPackageDiff(packages).map((l) => `  ${l}`),
    ...section('artifacts', files),
  ];
}

/** A raw view of a disk or filesystem image: qcow2 is converted to a sparse temporary file. */
async function rawView(input: Input, ex: DiskExecutor, session: Session): Promise<string> {
  if (input.kind !== 'qcow2') return input.file;
  const dir = await mkdtemp(path.join(tmpdir(), 'bareon-diff-'));
  session.cleanup.defer(() => rm(dir, { recursive: true, force: true }), `remove ${dir}`);
  const out = path.join(dir, `${path.basename(input.file)}.raw`);
  await ex.run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', input.file, out], {
    step: `qemu-img convert ${input.file}`,
  });
  return out;
}

const span = (ranges: ByteRange[]) => ranges.reduce((n, r) => n + r.end - r.start, 0);

async function diffDisks(a: Input, b: Input, session: Session, limit: number): Promise<string[]> {
  const ex = new HostExecutor(session.signal);
  const [rawA, rawB] = await Promise.all([rawView(a, ex, session), rawView(b, ex, session)]);
  const { ranges, sizeA, sizeB } = await differingRanges(rawA, rawB);
  const lines = [
    `bytes: ${formatBytes(span(ranges))} differ in ${ranges.length} range(s)${sizeA !== sizeB ? `; sizes ${sizeA} and ${sizeB}` : ''}`,
  ];
  const fh = await open(rawA, 'r');
  /** `n` bytes of image A from `offset` (its table, a partition's superblock). */
  const readA = async (offset: number, n: number) => {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, offset);
    return buf.subarray(0, bytesRead);
  };
  try {
    const table = a.kind === 'ext4' ? undefined : tableFromHead(await readA(0, 1024 * 1024));
    const regions =
      a.kind === 'ext4'
        ? [{ name: 'filesystem', start: 0, size: sizeA, number: 0 }]
        : (table?.partitions ?? []).map((p) => ({
            ...p,
            name: `partition ${p.number}${p.name ? ` (${p.name})` : ''}`,
          }));
    const outside = ranges.filter((r) => !regions.some((p) => r.start < p.start + p.size && r.end > p.start));
    if (outside.length)
      lines.push(
        `  partition table and gaps: ${formatBytes(span(outside))} at ${outside
          .slice(0, 4)
          .map((r) => r.start)
          .join(', ')}${outside.length > 4 ? ', …' : ''}`,
      );
    for (const p of regions) {
      const inside = ranges.filter((r) => r.start < p.start + p.size && r.end > p.start);
      if (!inside.length) continue;
      let what = '';
      if (detectContent(await readA(p.start, 2048)) === 'ext4') {
        const offsets = inside.flatMap((r) =>
          Array.from(
            { length: Math.min(64, Math.ceil((r.end - r.start) / 4096)) },
            (_, i) => Math.max(0, r.start - p.start) + i * 4096,
          ),
        );
        const owners = await ext4Owners(ex, rawA, p.start, offsets);
        const files = owners.paths.slice(0, limit).map((f) => `    ${f}`);
        what = `, ext4: ${owners.paths.length} file(s)${owners.metadataBlocks ? ` and ${owners.metadataBlocks} metadata block(s)` : ''}${owners.paths.length > limit ? ` (first ${limit})` : ''}\n${files.join('\n')}`;
      }
      lines.push(
        `  ${p.name}: ${formatBytes(span(inside))} in ${inside.length} range(s), first at +${Math.max(0, inside[0].start - p.start)}${what}`.trimEnd(),
      );
    }
    if (regions.length) lines.push("(offsets are bytes from the partition's start)");
    return lines;
  } finally {
    await fh.close();
  }
}

/** `bareon diff A B`: what differs between two artifacts or manifests. Exit 0 when identical, 1 when not. */
export async function diffCommand(
  fileA: string,
  fileB: string,
  opts: { limit: number },
  session: Session,
): Promise<number> {
  const [a, b] = await Promise.all([classify(fileA), classify(fileB)]);
  const family = (k: Kind) => (k === 'qcow2' ? 'disk' : k);
  if (family(a.kind) !== family(b.kind))
    throw new ValidationError(`${fileA} is a ${a.kind} and ${fileB} a ${b.kind}: bareon diff compares like with like`, {
      hint: 'give two tarballs, two disk images (raw or qcow2), two ext4 images, two manifests or two SBOMs',
    });
  const out = (line: string) => session.reporter.print(line);
  if (a.kind === 'manifest') {
    const [ma, mb] = await Promise.all(
      [a, b].map(async (x) => parseWith(ManifestSchema, JSON.parse(await readFile(x.file, 'utf8')), { label: x.file })),
    );
    const lines = diffManifests(ma, mb);
    const same = lines.every((l) => !/^\s*[+~-] /.test(l));
    for (const l of lines) out(l);
    out(same ? 'manifests: same artifacts and packages' : 'manifests differ');
    return same ? ExitCode.ok : ExitCode.failure;
  }
  const [sa, sb] = await Promise.all([fileSha256(a.file), fileSha256(b.file)]);
  if (sa === sb) {
    out(`identical: ${fileA} and ${fileB} (sha256 ${sa})`);
    return ExitCode.ok;
  }
  if (a.kind === 'sbom') {
    const [ta, tb] = await Promise.all([readFile(a.file, 'utf8'), readFile(b.file, 'utf8')]);
    const lines = diffSboms(ta, tb, fileA, fileB);
    const same = lines.every((l) => !/^\s*[+~-] /.test(l));
    for (const l of lines) out(l);
    out(same ? 'SBOMs: same packages and artifacts (the documents differ in other fields)' : 'SBOMs differ');
    return same ? ExitCode.ok : ExitCode.failure;
  }
  out(
    `differ: ${fileA} (sha256 ${sa.slice(0, 12)}, ${a.kind}${a.compression ? `.${a.compression}` : ''}) and ${fileB} (sha256 ${sb.slice(0, 12)}, ${b.kind}${b.compression ? `.${b.compression}` : ''})`,
  );
  const lines = a.kind === 'tar' ? await diffTarballs(a, b, opts.limit) : await diffDisks(a, b, session, opts.limit);
  for (const l of lines) out(l);
  return ExitCode.failure;
}
