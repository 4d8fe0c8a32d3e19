// The baseline of bench/api.ts, run as a child process: a bare node:http server answering every
// path with the response bytes the control plane gave for it, so the difference is the API's own
// work (routing, authentication, the database, serialisation).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type BareRequest = { op: 'serve'; bodies: Record<string, string> };
export type BareReply = { op: 'ready' } | { op: 'serving'; url: string };

process.on('message', (m: BareRequest & { id: number }) => {
  const bodies = new Map(Object.entries(m.bodies).map(([path, body]) => [path, Buffer.from(body)]));
  const server = createServer((req, res) => {
    // Read the request to its end, as the real server must, before answering.
    req.resume();
    req.on('end', () => {
      const body = bodies.get(req.url ?? '');
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.send?.({ op: 'serving', id: m.id, url: `http://127.0.0.1:${port}` });
  });
});
process.once('SIGTERM', () => process.exit(0));
process.send?.({ op: 'ready', id: -1 });
