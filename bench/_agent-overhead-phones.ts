// The phones of bench/agent-overhead.ts (and bench/adb-tunnel.ts), in a process of their own so that their memory and CPU are
// not counted as the agent's. Forked by the bench; serves a tiny HTTP control API on 127.0.0.1 that
// the bench's runtime in the agent process calls (see _agent-overhead-runtime.ts):
//   GET  /ping                                          -> 204
//   POST /start {deviceId, bootDelayMs, screen, model?} -> {port}   (idempotent: a running phone answers its port)
//   POST /stop  {deviceId}                              -> 204      (stopping a stopped phone is a no-op)
// Reports {op: 'ready', url} over IPC, then answers {op: 'stats'} with its own RSS and phone count and
// {op: 'port', deviceId} with the port of that phone's adbd.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startVirtualPhone, type VirtualPhone } from '@cphone/host-agent';

export interface PhoneStartRequest {
  deviceId: string;
  bootDelayMs: number;
  screen: { width: number; height: number; dpi: number };
  model?: string;
}

export type PhonesReply =
  | { op: 'ready'; url: string }
  | { op: 'stats'; rss: number; phones: number; cpuMicros: number }
  | { op: 'port'; port: number | undefined };

const phones = new Map<string, Promise<VirtualPhone>>();

async function start(request: PhoneStartRequest): Promise<number> {
  let phone = phones.get(request.deviceId);
  if (phone === undefined) {
    phone = startVirtualPhone({
      host: '127.0.0.1',
      port: 0,
      serial: request.deviceId,
      bootDelayMs: request.bootDelayMs,
      screen: request.screen,
      ...(request.model !== undefined ? { model: request.model } : {}),
    });
    phones.set(request.deviceId, phone);
    phone.catch(() => phones.delete(request.deviceId));
  }
  return (await phone).port;
}

async function stop(deviceId: string): Promise<void> {
  const phone = phones.get(deviceId);
  phones.delete(deviceId);
  await (await phone)?.close();
}

async function body<T>(req: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method === 'GET' && req.url === '/ping') {
    res.writeHead(204).end();
  } else if (req.method === 'POST' && req.url === '/start') {
    const port = await start(await body<PhoneStartRequest>(req));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ port }));
  } else if (req.method === 'POST' && req.url === '/stop') {
    await stop((await body<{ deviceId: string }>(req)).deviceId);
    res.writeHead(204).end();
  } else {
    res.writeHead(404).end();
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  });
});
server.keepAliveTimeout = 120_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

export type PhonesRequest = { op: 'stats' } | { op: 'port'; deviceId: string };

process.on('message', (message: PhonesRequest & { id: number }) => {
  if (message.op === 'port') {
    // Where a phone's adbd listens: bench/adb-tunnel.ts pushes to it directly too.
    const reply = (port: number | undefined) => process.send?.({ op: 'port', port, id: message.id });
    const phone = phones.get(message.deviceId);
    if (phone === undefined) reply(undefined);
    else
      phone.then(
        (p) => reply(p.port),
        () => reply(undefined),
      );
    return;
  }
  const cpu = process.cpuUsage();
  const reply: PhonesReply = {
    op: 'stats',
    rss: process.memoryUsage().rss,
    phones: phones.size,
    cpuMicros: cpu.user + cpu.system,
  };
  process.send?.({ ...reply, id: message.id });
});
process.once('SIGTERM', () => {
  void Promise.all([...phones.keys()].map((id) => stop(id).catch(() => undefined))).finally(() =>
    process.exit(0),
  );
});
process.send?.({ op: 'ready', url: `http://127.0.0.1:${port}`, id: -1 } satisfies PhonesReply & {
  id: number;
});
