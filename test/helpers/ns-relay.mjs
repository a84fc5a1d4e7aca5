// A TCP/unix-socket relay, run inside a test's network namespace (nsenter --net=…): it accepts on
// LISTEN and pipes each connection to CONNECT, where each is tcp:HOST:PORT or unix:PATH. A unix
// socket is a file, so it is where the namespace and the host meet. Prints "ready" once listening.
import net from 'node:net';
import { rmSync } from 'node:fs';

const endpoint = (spec) => {
  if (spec.startsWith('unix:')) return { path: spec.slice(5) };
  const m = /^tcp:(.+):(\d+)$/.exec(spec);
  if (!m) throw new Error(`ns-relay: expected tcp:HOST:PORT or unix:PATH, got ${spec}`);
  return { host: m[1], port: Number(m[2]) };
};
const [listen, connect] = process.argv.slice(2).map(endpoint);
if (listen.path) rmSync(listen.path, { force: true });
const server = net.createServer((client) => {
  const upstream = net.connect(connect);
  client.pipe(upstream).pipe(client);
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end);
  upstream.on('error', end);
});
server.listen(listen, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
