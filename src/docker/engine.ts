import type { CommandResult } from '../core/tool-error.js';
import type Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { CleanupStack } from '../core/cleanup.js';
import { BareonError } from '../core/errors.js';
import { CappedText, LineTail, lineSplitter } from '../stream/lines.js';

/** Every container and image bareon creates carries this label, valued with the run id. */
export const RUN_LABEL = 'org.bareon.run';
/** Step-cache images: the step's cache key, its title, and the profile that built it. */
export const CACHE_KEY_LABEL = 'org.bareon.cache.key';
export const CACHE_STEP_LABEL = 'org.bareon.cache.step';
export const CACHE_PROFILE_LABEL = 'org.bareon.cache.profile';

export interface ContainerSpec {
  image: string;
  cmd?: string[];
  entrypoint?: string[];
  env?: Record<string, string>;
  workdir?: string;
  user?: string;
  labels?: Record<string, string>;
  /** Container-side options (privileged, devices…) for adapters that need them. */
  hostConfig?: Docker.HostConfig;
}

export type { CommandResult } from '../core/tool-error.js';

export interface OutputOptions {
  /** Each line of output as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  tailLines?: number;
}

function describeHost(): string {
  return process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

/** Runs a removal: false when Docker answers that the object is in use (409), true when it is gone or never was (404). */
async function removedUnlessInUse(remove: () => Promise<unknown>): Promise<boolean> {
  try {
    await remove();
    return true;
  } catch (err) {
    const code = (err as { statusCode?: number }).statusCode;
    if (code === 409) return false;
    if (code === 404) return true;
    throw err;
  }
}

/** The adapter between bareon and a Docker Engine API (Docker or Podman's compatible socket). */
export class DockerEngine {
  /** Kills sent on abort, by container id: a removal waits for them (see removeContainer). */
  private readonly kills = new Map<string, Promise<unknown>>();

  private constructor(
    readonly docker: Docker,
    readonly runId: string,
  ) {}

  /** Connects through DOCKER_HOST or the default socket and checks that a daemon answers. */
  static async connect(runId: string, opts?: Docker.DockerOptions): Promise<DockerEngine> {
    // loaded here, not at import: every command that lists plugins imports this module, few talk to Docker
    const { default: Dockerode } = await import('dockerode');
    const docker = new Dockerode(opts);
    try {
      await docker.ping();
    } catch (err) {
      throw new BareonError(`cannot reach a Docker daemon at ${describeHost()}: ${(err as Error).message}`, {
        hint: 'start dockerd (`make setup` does), or point DOCKER_HOST at a Docker or Podman socket (unix:///run/podman/podman.sock, tcp://host:2375)',
        cause: err,
      });
    }
    return new DockerEngine(docker, runId);
  }

  private static readonly shared = new Map<string, Promise<DockerEngine>>();

  /**
   * One connection per run, shared by the plugins of that run. Its teardown, registered on `cleanup`
   * when it connects (so it runs after every removal registered later), removes whatever container
   * still carries the run's label: one whose create call was in flight when the run was interrupted
   * is tracked by nobody else.
   */
  static forRun(runId: string, cleanup: CleanupStack): Promise<DockerEngine> {
    let engine = DockerEngine.shared.get(runId);
    if (!engine) {
      engine = DockerEngine.connect(runId);
      engine.then(
        (e) => cleanup.defer(() => e.removeRunContainers(), `remove the containers labelled ${RUN_LABEL}=${runId}`),
        () => DockerEngine.shared.delete(runId),
      );
      DockerEngine.shared.set(runId, engine);
    }
    return engine;
  }

  /** Create calls not answered yet: the run's final sweep waits for them. */
  private readonly creating = new Set<Promise<unknown>>();
  private closed = false;

  /** Removes every container labelled with this run, after the create calls in flight have been answered; refuses new ones. */
  async removeRunContainers(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.creating);
    for (const c of await this.listContainers(`${RUN_LABEL}=${this.runId}`)) await this.removeContainer(c.Id);
  }

  /** Labels for anything this run creates. */
  labels(extra: Record<string, string> = {}): Record<string, string> {
    return { [RUN_LABEL]: this.runId, ...extra };
  }

  async inspectImage(ref: string): Promise<Docker.ImageInspectInfo | undefined> {
    try {
      return await this.docker.getImage(ref).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  /** Pulls `ref`; rejects when no registry can serve it. */
  async pull(ref: string, onLine?: (line: string) => void): Promise<void> {
    const stream = await this.docker.pull(ref);
    await new Promise<void>((resolve, reject) =>
      this.docker.modem.followProgress(
        stream,
        (err) => (err ? reject(err) : resolve()),
        (ev: { status?: string; error?: string }) => ev.status && onLine?.(ev.status),
      ),
    );
  }

  /** `docker import`: a root filesystem tar stream becomes image `repo:tag`. Returns the image id. */
  async importImage(
    tar: Readable,
    ref: { repo: string; tag: string },
    labels: Record<string, string> = {},
  ): Promise<string> {
    const changes = Object.entries(labels).map(([k, v]) => `LABEL ${k}=${JSON.stringify(v)}`);
    // untagged: Podman's compatible API ignores the tag parameter (it tags repo:latest)
    const response = (await this.docker.importImage(tar, { changes } as never)) as unknown as Readable;
    const events: { status?: string; error?: string }[] = await new Promise((resolve, reject) =>
      this.docker.modem.followProgress(response, (err: Error | null, out: { status?: string }[]) =>
        err ? reject(err) : resolve(out),
      ),
    );
    const failure = events.find((e) => e.error);
    if (failure) throw new BareonError(`docker import of ${ref.repo}:${ref.tag} failed: ${failure.error}`);
    const id = events
      .map((e) => e.status ?? '')
      .reverse()
      .find((st) => /^sha256:[0-9a-f]{64}$/.test(st));
    const image = id && (await this.inspectImage(id));
    if (!image) {
      throw new BareonError(`the engine's import of ${ref.repo}:${ref.tag} reported no image id`, {
        hint: 'the Docker Engine API answers an import with the new image id; check DOCKER_HOST points at Docker or Podman (podman system service)',
        details: JSON.stringify(events.slice(-3)),
      });
    }
    await this.tagImage(image.Id, ref.repo, ref.tag);
    return image.Id;
  }

  /** The Engine's build API on a tar'ed context (`docker build`). Returns the image id. The image is kept (a cache). */
  async buildImage(
    context: Readable,
    opts: { tag: string; dockerfile: string; labels?: Record<string, string>; onLine?: (line: string) => void },
  ): Promise<string> {
    const response = (await this.docker.buildImage(context as never, {
      t: opts.tag,
      dockerfile: opts.dockerfile,
      labels: opts.labels,
      rm: true,
      forcerm: true,
    })) as unknown as Readable;
    const events: { stream?: string; error?: string; errorDetail?: { message?: string } }[] = await new Promise(
      (resolve, reject) =>
        this.docker.modem.followProgress(
          response,
          (err: Error | null, out: { stream?: string; error?: string; errorDetail?: { message?: string } }[]) =>
            err ? reject(err) : resolve(out),
          (ev: { stream?: string }) =>
            ev.stream
              ?.split('\n')
              .filter((l) => l.trim())
              .forEach((l) => opts.onLine?.(l)),
        ),
    );
    const failure = events.find((e) => e.error || e.errorDetail);
    if (failure) {
      const tail = events
        .flatMap((e) => (e.stream ? e.stream.split('\n') : []))
        .filter(Boolean)
        .slice(-30)
        .join('\n');
      throw new BareonError(
        `docker build of ${opts.dockerfile} failed: ${failure.error ?? failure.errorDetail?.message}`,
        { details: tail },
      );
    }
    const image = await this.inspectImage(opts.tag);
    if (!image) throw new BareonError(`docker build finished but ${opts.tag} is missing`);
    return image.Id;
  }

  /** Creates a labelled container; it is not started. */
  async createContainer(spec: ContainerSpec): Promise<Docker.Container> {
    if (this.closed) throw new BareonError(`run ${this.runId} is over: no container is created after its teardown`);
    const created = this.docker.createContainer({
      Image: spec.image,
      Cmd: spec.cmd,
      Entrypoint: spec.entrypoint,
      Env: spec.env ? Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) : undefined,
      WorkingDir: spec.workdir,
      User: spec.user,
      Labels: this.labels(spec.labels),
      Tty: false,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: spec.hostConfig,
    });
    this.creating.add(created);
    try {
      return await created;
    } finally {
      this.creating.delete(created);
    }
  }

  /** Starts a created container, streams its output, and waits for its exit code. */
  async start(container: Docker.Container, opts: OutputOptions = {}): Promise<CommandResult> {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true }).catch(explainStartFailure);
    const collected = collectOutput(this.docker, stream, opts);
    const onAbort = () =>
      void this.kills.set(
        container.id,
        container.kill().catch(() => {}),
      );
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await container.start().catch(explainStartFailure);
      const [{ StatusCode }] = await Promise.all([container.wait() as Promise<{ StatusCode: number }>, collected.done]);
      return collected.result(StatusCode);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Creates, starts and waits for a container, then removes it. */
  async run(spec: ContainerSpec, opts: OutputOptions = {}): Promise<CommandResult> {
    const container = await this.createContainer(spec);
    try {
      return await this.start(container, opts);
    } finally {
      await this.removeContainer(container.id);
    }
  }

  /** Runs a command in a running container. */
  async exec(
    containerId: string,
    cmd: string[],
    opts: OutputOptions & { env?: Record<string, string>; user?: string } = {},
  ): Promise<CommandResult> {
    const exec = await this.docker.getContainer(containerId).exec({
      Cmd: cmd,
      AttachStdout: true,
      AttachStderr: true,
      Env: opts.env ? Object.entries(opts.env).map(([k, v]) => `${k}=${v}`) : undefined,
      User: opts.user,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const collected = collectOutput(this.docker, stream, opts);
    await collected.done;
    const { ExitCode } = await exec.inspect();
    return collected.result(ExitCode ?? -1);
  }

  /** `docker export`: the container's filesystem as a tar stream. */
  async exportContainer(containerId: string): Promise<Readable> {
    return (await this.docker.getContainer(containerId).export()) as unknown as Readable;
  }

  /**
   * `docker commit` with labels; returns the new image id. The image does not keep the run's label
   * (it is set empty): containers that users start from it would otherwise look like leftovers of
   * this run to `bareon gc`.
   */
  async commit(
    containerId: string,
    labels: Record<string, string>,
    ref?: { repo: string; tag: string },
  ): Promise<string> {
    const changes = Object.entries({ [RUN_LABEL]: '', ...labels })
      .map(([k, v]) => `LABEL ${k}=${JSON.stringify(v)}`)
      .join('\n');
    const result = (await this.docker.getContainer(containerId).commit({ changes, ...ref })) as { Id: string };
    // Podman answers with the bare hex digest; image listings and inspect say sha256:…
    return result.Id.includes(':') ? result.Id : `sha256:${result.Id}`;
  }

  /** Copies a tar stream into the container at `path` (which must exist). */
  async putArchive(containerId: string, path: string, tar: Readable): Promise<void> {
    await this.docker.getContainer(containerId).putArchive(tar, { path });
  }

  /** A tar stream of `path` inside the container. */
  async getArchive(containerId: string, path: string): Promise<Readable> {
    return (await this.docker.getContainer(containerId).getArchive({ path })) as unknown as Readable;
  }

  /** Removes a container (running or not) and its anonymous volumes; a missing one is fine. */
  async removeContainer(containerId: string): Promise<void> {
    const container = this.docker.getContainer(containerId);
    await this.stopped(container);
    // 409: a removal already under way (Docker), or the container still busy, as with an export
    // stream Podman has not closed yet. Ask again, and check it is gone, rather than leave it behind.
    for (let attempt = 1; ; attempt++) {
      try {
        await container.remove({ force: true, v: true });
      } catch (err) {
        const code = (err as { statusCode?: number }).statusCode;
        if (code === 404) return;
        if (code !== 409 || attempt >= 20) throw err;
      }
      const gone = await container.inspect().then(
        () => false,
        (err: { statusCode?: number }) => err.statusCode === 404,
      );
      if (gone) return;
      if (attempt >= 20)
        throw new BareonError(`container ${containerId.slice(0, 12)} is still there after removing it`, {
          hint: 'remove it with docker rm -f, or bareon gc',
        });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /**
   * Kills a running container and waits until it has stopped. Podman 4.3 can bring a container back,
   * exited, after a forced removal that raced with its kill or its exit (1 run in 3 when interrupted),
   * so a removal starts only once the container is still.
   */
  private async stopped(container: Docker.Container): Promise<void> {
    await this.kills.get(container.id);
    this.kills.delete(container.id);
    const state = await container.inspect().then(
      (info) => info.State,
      () => undefined, // gone, or not inspectable: the removal that follows says which
    );
    if (!state?.Running && !state?.Paused && !state?.Restarting) return;
    await container.kill().catch(() => {}); // it may have stopped in between
    await container.wait().catch(() => {});
  }

  async removeImage(ref: string, force = false): Promise<void> {
    try {
      await this.docker.getImage(ref).remove({ force, noprune: false });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  /** Removes an image unless a container or a child image still uses it; says whether it is gone. */
  async removeImageIfUnused(ref: string): Promise<boolean> {
    return removedUnlessInUse(() => this.docker.getImage(ref).remove({ noprune: false }));
  }

  /** Removes a volume; false when a container still uses it, true when it is gone (or never was). */
  async removeVolumeIfUnused(name: string): Promise<boolean> {
    return removedUnlessInUse(() => this.docker.getVolume(name).remove());
  }

  async tagImage(id: string, repo: string, tag: string): Promise<void> {
    await this.docker.getImage(id).tag({ repo, tag });
  }

  /**
   * Containers that bareon runs created and did not remove: their run label is set. (Images bareon
   * commits carry the label empty, and so do containers started from them by anyone.)
   */
  async listLeftoverContainers(): Promise<Docker.ContainerInfo[]> {
    return (await this.listContainers(RUN_LABEL)).filter((c) => c.Labels?.[RUN_LABEL]);
  }

  async listContainers(label: string): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({ all: true, filters: { label: [label] } });
  }

  async listImages(label: string): Promise<Docker.ImageInfo[]> {
    return this.docker.listImages({ all: true, filters: { label: [label] } });
  }
}

function collectOutput(docker: Docker, stream: NodeJS.ReadableStream, opts: OutputOptions) {
  const stdout = new CappedText();
  const stderr = new CappedText();
  const tail = new LineTail(opts.tailLines ?? 30);
  const out = new PassThrough();
  const err = new PassThrough();
  const sink = (which: 'stdout' | 'stderr', text: CappedText) =>
    lineSplitter((line) => {
      text.append(`${line}\n`);
      tail.push(line);
      opts.onLine?.(line, which);
    });
  docker.modem.demuxStream(stream, out, err);
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', resolve);
  }).then(() => {
    out.end();
    err.end();
  });
  const done = Promise.all([pipeline(out, sink('stdout', stdout)), pipeline(err, sink('stderr', stderr)), ended]).then(
    () => {},
  );
  return {
    done,
    result: (exitCode: number): CommandResult => ({
      exitCode,
      stdout: stdout.toString(),
      stderr: stderr.toString(),
      tail: tail.toString(),
    }),
  };
}

/**
 * A container that the engine cannot start, with the fix when it is known: where a container may
 * not raise its rlimits (some CI sandboxes), Podman needs explicit ones.
 */
export function explainStartFailure(err: Error): never {
  if (/error setting rlimit/i.test(err.message)) {
    throw new BareonError(
      `the container engine cannot start containers here: ${err.message.split('\n')[0].slice(0, 300)}`,
      {
        hint: 'give containers explicit rlimits: for Podman, default_ulimits = ["nproc=4096:4096", "nofile=4096:4096"] under [containers] in /etc/containers/containers.conf, then restart podman system service (make setup writes it)',
        cause: err,
      },
    );
  }
  throw err;
}
