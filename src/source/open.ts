import { createReadStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { BareonError, ValidationError } from '../core/errors.js';
import { formatBytes } from '../core/size.js';

export const isUrl = (uri: string) => /^https?:\/\//i.test(uri);

/** The stored bytes of a source failed to arrive whole. */
export class TruncatedSourceError extends BareonError {}

/** Passes bytes through and fails at the end if fewer or more than `expected` came. */
export function expectLength(expected: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      if (seen === expected) return done();
      done(
        new TruncatedSourceError(
          `${what}: truncated: received ${formatBytes(seen)} (${seen} bytes) of ${formatBytes(expected)} (${expected} bytes)`,
          { hint: 'the source ended early; check the server or file, then run again' },
        ),
      );
    },
  });
}

/** GET `url`, following up to five redirects; resolves with the response of a 200. */
async function get(url: string, signal?: AbortSignal, redirects = 5): Promise<IncomingMessage> {
  // node:http and node:https (with TLS) load for a URL source only
  const client = url.startsWith('https:') ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = client.get(url, { signal }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location && redirects > 0) {
        res.resume();
        resolve(get(new URL(res.headers.location, url).href, signal, redirects - 1));
      } else if (status !== 200) {
        res.resume();
        reject(
          new ValidationError(`source ${url}: the server answered ${status} ${res.statusMessage ?? ''}`.trim(), {
            hint: 'check the URL',
          }),
        );
      } else resolve(res);
    });
    req.on('error', (err) => reject(new BareonError(`source ${url}: ${err.message}`, { cause: err })));
  });
}

/**
 * Opens a source's stored bytes as a stream: a local file, an http(s) URL (streamed; a response
 * shorter than its Content-Length fails with a truncation error), or stdin for "-".
 */
export async function openStored(uri: string, signal?: AbortSignal): Promise<{ stream: Readable; size?: number }> {
  if (uri === '-') return { stream: process.stdin };
  if (isUrl(uri)) {
    const res = await get(uri, signal);
    const length = res.headers['content-length'] ? Number(res.headers['content-length']) : undefined;
    const stream = length === undefined ? res : res.pipe(expectLength(length, `source ${uri}`));
    // a connection that drops mid-body is a truncation, whatever the socket calls it
    if (length !== undefined)
      res.on('error', (err) =>
        stream.destroy(
          new TruncatedSourceError(`source ${uri}: truncated: the connection failed mid-transfer (${err.message})`),
        ),
      );
    // closing what the caller holds (after a peek, on failure) closes the connection too
    stream.on('close', () => res.destroy());
    return { stream, size: length };
  }
  return { stream: createReadStream(uri, { highWaterMark: 1024 * 1024, signal }) };
}

/**
 * Reads at least `n` bytes from the front of `stream` (fewer if it ends) and puts them back: `rest`
 * is the stream to read from then on, `stream` itself, or a new one holding the head when `stream`
 * ended (an ended stream takes nothing back).
 */
export function peek(stream: Readable, n: number): Promise<{ head: Buffer; rest: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    let ended = false;
    const finish = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', reject);
      const head = Buffer.concat(chunks);
      if (ended) return resolve({ head, rest: Readable.from(head.length ? [head] : []) });
      if (head.length) stream.unshift(head);
      resolve({ head, rest: stream });
    };
    const onEnd = () => {
      ended = true;
      finish();
    };
    const onReadable = () => {
      while (have < n) {
        const chunk: Buffer | null = stream.read();
        if (chunk === null) break;
        chunks.push(chunk);
        have += chunk.length;
      }
      if (have >= n) finish();
    };
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', reject);
  });
}

/**
 * All of a small stream's bytes (a manifest, a signature), refused with `tooLarge()` past `max`: a
 * server could send without end.
 */
export async function readAtMost(stream: Readable, max: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      stream.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
