import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireUkiTools } from '../../actions/uki.js';

const PATH = process.env.PATH;
afterEach(() => {
  process.env.PATH = PATH;
});

describe('a deploy that builds a uki on this host', () => {
  it('is refused before anything is written when objcopy or sbsign is missing, naming the package', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'no-tools-'));
    process.env.PATH = empty;
    await expect(requireUkiTools(false)).rejects.toThrow(/uki: objcopy is not installed on this host/);
    process.env.PATH = PATH;
    await expect(requireUkiTools(true)).resolves.toBeUndefined();
    await rm(empty, { recursive: true });
  });
});
