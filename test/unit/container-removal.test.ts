import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DockerEngine } from '../../src/docker/engine.js';

/** A container that records the API calls made on it; `running` until killed. */
function fakeContainer() {
  const calls: string[] = [];
  let running = true;
  let present = true;
  let releaseKill: () => void = () => {};
  const killGate = new Promise<void>((resolve) => (releaseKill = resolve));
  const container = {
    id: 'c0ffee',
    async inspect() {
      calls.push('inspect');
      if (!present) throw Object.assign(new Error('no such container'), { statusCode: 404 });
      return { State: { Running: running } };
    },
    async kill() {
      calls.push('kill');
      await killGate;
      running = false;
      calls.push('killed');
    },
    async wait() {
      calls.push('wait');
      return { StatusCode: 137 };
    },
    async remove() {
      calls.push(running ? 'remove (running)' : 'remove');
      present = false;
    },
  };
  return { container, calls, releaseKill };
}

const engineWith = (container: unknown) =>
  new (DockerEngine as unknown as new (docker: unknown, runId: string) => DockerEngine)(
    { getContainer: () => container, modem: { demuxStream() {} } },
    'run',
  );

describe('removing a container', () => {
  it('kills a running one and waits for it to stop before removing it', async () => {
    const { container, calls, releaseKill } = fakeContainer();
    releaseKill();
    await engineWith(container).removeContainer(container.id);
    expect(calls).toEqual(['inspect', 'kill', 'killed', 'wait', 'remove', 'inspect']);
  });

  it('waits for the kill an abort sent before it removes', async () => {
    const { container, calls, releaseKill } = fakeContainer();
    const engine = engineWith(container);
    const controller = new AbortController();
    const running = {
      ...container,
      attach: async () => new PassThrough(),
      start: async () => {},
      wait: () => new Promise(() => {}),
    };
    void engine.start(running as unknown as Docker.Container, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    const removal = engine.removeContainer(container.id);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual(['kill']); // nothing else until the kill has come back
    releaseKill();
    await removal;
    expect(calls).toEqual(['kill', 'killed', 'inspect', 'remove', 'inspect']);
  });
});

describe("a run's teardown", () => {
  it('removes a container whose create call was still in flight, once the engine has answered it', async () => {
    const { container, calls, releaseKill } = fakeContainer();
    releaseKill();
    let answer: () => void = () => {};
    const created: string[] = [];
    const docker = {
      modem: { demuxStream() {} },
      getContainer: () => container,
      createContainer: () =>
        new Promise((resolve) => {
          answer = () => {
            created.push(container.id);
            resolve(container);
          };
        }),
      listContainers: async (opts: { filters: { label: string[] } }) =>
        opts.filters.label[0] === 'org.bareon.run=run' ? created.map((Id) => ({ Id })) : [],
    };
    const engine = new (DockerEngine as unknown as new (docker: unknown, runId: string) => DockerEngine)(docker, 'run');
    const create = engine.createContainer({ image: 'x' });
    const teardown = engine.removeRunContainers();
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual([]); // the sweep waits for the engine's answer
    answer();
    await Promise.all([create, teardown]);
    expect(calls).toContain('remove');
    await expect(engine.createContainer({ image: 'x' })).rejects.toThrow(/no container is created after its teardown/);
  });
});
