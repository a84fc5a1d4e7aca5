import { execFileSync } from 'node:child_process';

/** Tests spawn the compiled CLI and built-in plugins are declared by their dist paths: compile first. */
export default function compile(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
