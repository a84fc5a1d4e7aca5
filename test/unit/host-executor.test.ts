import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { HostExecutor } from '../../src/host/executor.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pids whose command line matches `pattern`, once there is one (a loaded machine may take a while to spawn it). */
async function pidsOf(pattern: string): Promise<number[]> {
  const until = Date.now() + 15_000;
  for (;;) {
    const r = spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim().split('\n').map(Number);
    if (Date.now() > until) throw new Error(`no process matching "${pattern}" within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('HostExecutor.settled', () => {
  it('waits for a stopped tool to exit, and kills one that ignores SIGTERM once the grace is over', async () => {
    const stop = new AbortController();
    const ex = new HostExecutor(stop.signal);
    // a tool that outlives SIGTERM, as one inside a write outlives it until the write returns
    // (an ignored SIGTERM stays ignored across exec)
    const running = ex.run(['sh', '-c', 'trap "" TERM; exec sleep 5.0417'], { allowFailure: true }).catch(() => {});
    const pids = await pidsOf('sleep 5.0417');
    stop.abort(new Error('SIGINT'));
    const started = Date.now();
    await ex.settled(500);
    expect(Date.now() - started).toBeLessThan(3000);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    await running;
  });

  it('returns at once when nothing runs', async () => {
    const started = Date.now();
    await new HostExecutor().settled();
    expect(Date.now() - started).toBeLessThan(50);
  });
});
