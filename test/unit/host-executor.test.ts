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

describe('HostExecutor.settled', () => {
  it('waits for a stopped tool to exit, and kills one that ignores SIGTERM once the grace is over', async () => {
    const stop = new AbortController();
    const ex = new HostExecutor(stop.signal);
    // a tool that outlives SIGTERM, as one inside a write outlives it until the write returns
    // (an ignored SIGTERM stays ignored across exec)
    const running = ex.run(['sh', '-c', 'trap "" TERM; exec sleep 5.0417'], { allowFailure: true }).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    const pids = (await import('node:child_process'))
      .execFileSync('pgrep', ['-f', 'sleep 5.0417'])
      .toString()
      .trim()
      .split('\n')
      .map(Number);
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
