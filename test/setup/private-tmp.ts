import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

// Each test file gets its own TMPDIR (inherited by the commands it runs) and leaves nothing in /tmp.
// (the base is remembered: a worker that runs several files must not nest them)
process.env.BAREON_TEST_TMP_BASE ??= tmpdir();
const dir = mkdtempSync(path.join(process.env.BAREON_TEST_TMP_BASE, 'bareon-test-'));
process.env.TMPDIR = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
