import { createHash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';

// Runs in the worker: hashes each chunk in the order sent and answers once the chunk may be reused.
const SCRIPT = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', ({ id, buffer, offset, length }) => {
  if (buffer) hash.update(new Uint8Array(buffer, offset, length));
  parentPort.postMessage({ id, digest: buffer ? undefined : hash.digest('hex') });
});
`;

/** An incremental sha256 fed with chunks that the caller reuses once the promise for one resolves. */
export interface ChunkHasher {
  update(chunk: Buffer): Promise<void>;
  digest(): Promise<string>;
  close(): Promise<void>;
}

/** Below this many bytes, starting a thread costs more than hashing on the event loop. */
const WORKER_FROM = 64 * 1024 * 1024;

/** A hasher for a stream of `bytes`: on a worker thread when that pays (the chunks must then be views of shared memory). */
export function sha256Hasher(bytes: number): ChunkHasher {
  if (bytes >= WORKER_FROM) return new Sha256Worker();
  const hash = createHash('sha256');
  return {
    update: async (chunk) => void hash.update(chunk),
    digest: async () => hash.digest('hex'),
    close: async () => {},
  };
}

/**
 * A sha256 computed on a worker thread, so that hashing costs the event loop nothing: the caller reads
 * into shared memory ({@link Sha256Worker.buffer}), hands the chunks to {@link Sha256Worker.update} in
 * stream order, and reuses a buffer once the promise for it resolves. {@link Sha256Worker.close} must
 * follow, also on failure.
 */
export class Sha256Worker implements ChunkHasher {
  // node:worker_threads loads with the first worker: a small file is hashed on the event loop
  private readonly worker: Worker = new (process.getBuiltinModule('node:worker_threads').Worker)(SCRIPT, {
    eval: true,
  });
  private readonly pending = new Map<number, { resolve: (digest?: string) => void; reject: (err: Error) => void }>();
  private nextId = 0;
  private failure?: Error;

  constructor() {
    this.worker.on('message', ({ id, digest }: { id: number; digest?: string }) => {
      this.pending.get(id)?.resolve(digest);
      this.pending.delete(id);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => this.fail(new Error('the sha256 worker thread has ended')));
  }

  /** A buffer of `bytes` over shared memory, which the worker reads in place. */
  static buffer(bytes: number): Buffer {
    return Buffer.from(new SharedArrayBuffer(bytes));
  }

  /** Adds `chunk`, a view of shared memory, to the hash; resolves once the worker is done with it. */
  async update(chunk: Buffer): Promise<void> {
    if (!(chunk.buffer instanceof SharedArrayBuffer))
      throw new TypeError('Sha256Worker.update needs a view of a SharedArrayBuffer');
    await this.send({ buffer: chunk.buffer, offset: chunk.byteOffset, length: chunk.length });
  }

  /** The hex sha256 of everything added. */
  async digest(): Promise<string> {
    return (await this.send({}))!;
  }

  /** Ends the worker; what is still pending fails. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  private send(message: { buffer?: SharedArrayBuffer; offset?: number; length?: number }): Promise<string | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...message });
    });
  }
}
