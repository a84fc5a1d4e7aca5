import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a test's HTTP server answers for a path: a fixed text, or a file's bytes. */
export type Route = string | { file: string };

/** Answers `req` from `routes` by its path: 404 for an unknown one; HEAD gets the length alone. */
export async function answerRoute(
  routes: Record<string, Route>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const route = routes[req.url ?? ''];
  if (route === undefined) return void res.writeHead(404).end();
  const length = typeof route === 'string' ? Buffer.byteLength(route) : (await stat(route.file)).size;
  res.writeHead(200, { 'content-length': length });
  if (req.method === 'HEAD') return void res.end();
  if (typeof route === 'string') return void res.end(route);
  createReadStream(route.file).pipe(res);
}

/** Serves fixed texts and files over HTTP on 127.0.0.1, recording the paths asked for. */
export async function serveFiles(
  routes: Record<string, Route>,
): Promise<{ port: number; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    void answerRoute(routes, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
