import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJob } from '../../src/agent/parse-job.js';
import { exitCodeOf } from '../../src/core/errors.js';
import { resolveSource } from '../../src/source/resolve.js';
import { REPO } from '../helpers/cli.js';
import { sha256File, tarZst } from '../helpers/deploy.js';
import { prng } from '../fuzz/prng.js';

/**
 * Manifests (as bareon-deploy reads them) and agent jobs, mutated at random: each is accepted or
 * refused with a usage error (exit 2) that names the document, never anything else. Seeded: a
 * failure prints its seed and case; add it to test/fuzz/seeds/documents.json, which is replayed first.
 */
const CASES = Number(process.env.BAREON_FUZZ_CASES ?? 400);
const SEED = Number(process.env.BAREON_FUZZ_SEED ?? 20261206);

const MANIFEST = {
  manifest_version: 1,
  name: 'm',
  created: '2026-12-06T00:00:00Z',
  profile_digest: 'x',
  base_image: 'sha256:0',
  image: 'sha256:1',
  builder: 'debian',
  artifacts: [
    {
      uri: 'm.tar.zst',
      format: 'tar.zst',
      sha256: 'a'.repeat(64),
      size: 10,
      virtual_size: 4096,
      table: 'gpt',
      partitions: [{ number: 1, type: 'linux', offset: 1048576, size: 1048576 }],
    },
  ],
  packages: [{ name: 'bash', version: '5.2', arch: 'amd64' }],
  steps: [{ title: 'packages', key: 'k', cached: true, seconds: 1 }],
};
const JOB = [
  'source: images/debian.qcow2',
  `checksum: sha256:${'b'.repeat(64)}`,
  'target_hints: {serial: disk-a, size: ">= 4GiB"}',
  'layout:',
  '  disks:',
  '    - id: root',
  '      partitions:',
  '        - {type: linux, size: remaining, fs: {type: ext4}, mount: /}',
  'configdrive: {meta_data: meta.json, user_data: user.yaml}',
  'keep: [data]',
  'grow: true',
  'when_done: reboot',
  '',
].join('\n');

const JUNK: unknown[] = [
  null,
  -1,
  0,
  Number.POSITIVE_INFINITY,
  2 ** 64,
  '',
  '../../etc/passwd',
  '/etc/shadow',
  'file:///etc/passwd',
  'http://',
  [],
  {},
  true,
  '\u0000',
  'x'.repeat(5000),
  { nested: { deep: [1, [2, [3]]] } },
  'sha256:zz',
];
const YAML_JUNK = [
  '-5GiB',
  '[',
  '{',
  '&a [*a]',
  '!!binary aGk=',
  '"\\u0000"',
  ':',
  '- x',
  '*nope',
  '999999999999999999999TiB',
  "'",
  '~',
];

/** One random edit of a JSON value: a key dropped or renamed, a value replaced by junk, an array emptied or doubled. */
function mutateValue(value: unknown, rand: () => number): unknown {
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  if (Array.isArray(value)) {
    if (value.length === 0 || rand() < 0.2) return rand() < 0.5 ? [] : [pick(JUNK)];
    const copy = [...value];
    const i = Math.floor(rand() * copy.length);
    copy[i] = rand() < 0.3 ? pick(JUNK) : mutateValue(copy[i], rand);
    if (rand() < 0.2) copy.push(copy[i]);
    return copy;
  }
  if (value && typeof value === 'object') {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    const k = pick(keys);
    const r = rand();
    if (r < 0.2) delete copy[k];
    else if (r < 0.3) copy[`${k}_`] = copy[k];
    else if (r < 0.5) copy[k] = pick(JUNK);
    else copy[k] = mutateValue(copy[k], rand);
    return copy;
  }
  return pick(JUNK);
}

/** A mutated manifest text: a structural edit, sometimes cut short or with bytes spliced in. */
function manifestText(rand: () => number): string {
  let text = JSON.stringify(mutateValue(MANIFEST, rand));
  if (rand() < 0.15) text = text.slice(0, Math.floor(rand() * text.length));
  if (rand() < 0.1) {
    const at = Math.floor(rand() * text.length);
    text = text.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + text.slice(at);
  }
  // what bareon-deploy recognises as a manifest starts so
  return text.startsWith('{"manifest_version"') ? text : `{"manifest_version": 1, ${text.replace(/^\{/, '')}`;
}

/** A mutated job text: a line dropped, doubled, re-indented, or given a junk value. */
function jobText(rand: () => number): string {
  const lines = JOB.split('\n');
  for (let k = 1 + Math.floor(rand() * 3); k > 0; k--) {
    const i = Math.floor(rand() * lines.length);
    const r = rand();
    if (r < 0.25) lines.splice(i, 1);
    else if (r < 0.45) lines.splice(i, 0, lines[i]);
    else if (r < 0.6) lines[i] = `${' '.repeat(Math.floor(rand() * 4))}${lines[i]}`;
    else
      lines[i] = lines[i].replace(
        /(:\s*)(\S.*)?$/,
        (_m, sep) => `${sep}${YAML_JUNK[Math.floor(rand() * YAML_JUNK.length)]}`,
      );
  }
  return lines.join('\n');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'bareon-docfuzz-'));
  // the artifact the manifest names, so that an intact manifest is accepted
  const artifact = path.join(dir, 'm.tar.zst');
  await tarZst(artifact, [['etc/hostname', 'm\n']]);
  Object.assign(MANIFEST.artifacts[0], { sha256: await sha256File(artifact), size: (await stat(artifact)).size });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs one document through its reader; returns 'accepted' or 'refused', or throws with the case's story. */
async function check(kind: 'manifest' | 'job', text: string, story: string): Promise<'accepted' | 'refused'> {
  const file = path.join(dir, kind === 'manifest' ? 'm.manifest.json' : 'job.yaml');
  try {
    if (kind === 'manifest') {
      await writeFile(file, text);
      await resolveSource(file);
    } else parseJob(text, file);
    return 'accepted';
  } catch (err) {
    const message = (err as Error)?.message ?? String(err);
    if (exitCodeOf(err) !== 2 || !message.includes(dir)) {
      throw new Error(
        `${story}: ${kind} fails with exit ${exitCodeOf(err)} and message "${message}"\n${(err as Error)?.stack}\n--- input ---\n${text}`,
      );
    }
    return 'refused';
  }
}

describe('manifests and jobs, fuzzed', () => {
  it('replays every case in the seed list', async () => {
    const seeds = JSON.parse(await readFile(path.join(REPO, 'test/fuzz/seeds/documents.json'), 'utf8')) as {
      cases: { kind: 'manifest' | 'job'; text: string; why: string }[];
    };
    for (const c of seeds.cases) expect(await check(c.kind, c.text, `seed list: ${c.why}`)).toBe('refused');
  });

  it(`${CASES} mutated manifests and ${CASES} mutated jobs are accepted or refused with a located usage error`, async () => {
    const rand = prng(SEED);
    const tally = { manifest: { accepted: 0, refused: 0 }, job: { accepted: 0, refused: 0 } };
    for (let n = 0; n < CASES; n++) {
      tally.manifest[await check('manifest', manifestText(rand), `seed ${SEED}, case ${n}`)]++;
      tally.job[await check('job', jobText(rand), `seed ${SEED}, case ${n}`)]++;
    }
    console.log(
      `document fuzz, seed ${SEED}: manifests ${JSON.stringify(tally.manifest)}, jobs ${JSON.stringify(tally.job)}`,
    );
    expect(tally.manifest.accepted).toBeGreaterThan(0);
    expect(tally.manifest.refused).toBeGreaterThan(CASES / 4);
    expect(tally.job.refused).toBeGreaterThan(CASES / 10);
  });
});
