import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync } from 'node:fs';

/**
 * Tests spawn the compiled CLI and built-in plugins are declared by their dist paths: compile first,
 * unless the caller did (`make test` compiles once for the two vitest runs it starts side by side).
 */
export default function compile(): void {
  if (process.env.BAREON_TEST_COMPILED === '1') return;
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  for (const f of readdirSync('dist/src/cli')) if (f.endsWith('.js')) chmodSync(`dist/src/cli/${f}`, 0o755);
}
