// Shared helpers of the benchmarks: timing, command running, peak RSS of a process tree's root.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = (name) => path.join(REPO, 'dist/src/cli', `${name}.js`);

/** Runs a command (argv or a shell line); resolves with wall seconds, output and the process's peak RSS (VmHWM). */
export function run(cmd, { shell = false, env = {}, quiet = true } = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = shell
      ? spawn('bash', ['-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env } })
      : spawn(cmd[0], cmd.slice(1), { env: { ...process.env, ...env } });
    let out = '';
    let peakKiB = 0;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const poll = setInterval(async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const hwm = /VmHWM:\s+(\d+)/.exec(status);
      if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
    }, 50);
    child.on('close', (code) => {
      clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${shell ? cmd : cmd.join(' ')} exited ${code}\n${out.slice(-3000)}`));
      if (!quiet) process.stdout.write(out);
      resolve({ seconds, out, peakMiB: peakKiB / 1024 });
    });
  });
}

export const fmt = (n, digits = 1) => n.toFixed(digits);

export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) => r.map((c, i) => String(c).padEnd(widths[i])).join('  ')).join('\n');
}
