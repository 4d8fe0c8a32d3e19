// The client side of bench/api.ts, run as a child process so its CPU does not share the server's
// event loop: hand-built Connect JSON requests over node:http keep-alive connections, closed-loop
// (N connections, each sending its next request when the last answers) or open-loop (requests on a
// fixed timetable, latency taken from the scheduled send time so a stalled server cannot hide its
// queue: no coordinated omission).
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

/** One call: where, and the exact bytes a Connect JSON client sends. */
export interface Call {
  url: string;
  path: string;
  body: string;
  authorization: string;
}

export type ClientRequest =
  | { op: 'closed'; call: Call; connections: number; seconds: number }
  | { op: 'open'; call: Call; rate: number; seconds: number; connections: number };

export interface Figures {
  /** Requests answered 200 per second of the run. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  answered: number;
  errors: number;
  /** This client process's CPU over the run, in cores (1 = one core busy all the time). */
  clientCores: number;
}

export type ClientReply = { op: 'ready' } | ({ op: 'figures' } & Figures);

function send(agent: Agent, call: Call): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      call.url + call.path,
      {
        agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'connect-protocol-version': '1',
          authorization: call.authorization,
          'content-length': Buffer.byteLength(call.body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
        res.on('error', () => resolve(false));
      },
    );
    req.on('error', () => resolve(false));
    req.end(call.body);
  });
}

function figures(times: number[], errors: number, ms: number, cpu: NodeJS.CpuUsage): Figures {
  times.sort((x, y) => x - y);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
  return {
    rps: times.length / (ms / 1000),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    answered: times.length,
    errors,
    clientCores: (cpu.user + cpu.system) / 1000 / ms,
  };
}

async function closed(call: Call, connections: number, seconds: number): Promise<Figures> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const times: number[] = [];
  let errors = 0;
  const cpu = process.cpuUsage();
  const began = performance.now();
  const end = began + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        if (await send(agent, call)) times.push(performance.now() - t);
        else errors++;
      }
    }),
  );
  const ms = performance.now() - began;
  agent.destroy();
  return figures(times, errors, ms, process.cpuUsage(cpu));
}

async function open(call: Call, rate: number, seconds: number, connections: number): Promise<Figures> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const times: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const pending: Promise<void>[] = [];
  const cpu = process.cpuUsage();
  const began = performance.now();
  let sent = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      // Everything whose time has come goes now; each is timed from its scheduled moment.
      const now = performance.now();
      while (sent < total && began + sent * interval <= now) {
        const scheduled = began + sent * interval;
        sent++;
        pending.push(
          send(agent, call).then((ok) => {
            if (ok) times.push(performance.now() - scheduled);
            else errors++;
          }),
        );
      }
      if (sent < total) setTimeout(tick, Math.max(0, began + sent * interval - performance.now()));
      else done();
    };
    tick();
  });
  await Promise.all(pending);
  const ms = performance.now() - began;
  agent.destroy();
  return figures(times, errors, ms, process.cpuUsage(cpu));
}

process.on('message', async (m: ClientRequest & { id: number }) => {
  const f =
    m.op === 'closed'
      ? await closed(m.call, m.connections, m.seconds)
      : await open(m.call, m.rate, m.seconds, m.connections);
  process.send?.({ op: 'figures', id: m.id, ...f });
});
process.once('SIGTERM', () => process.exit(0));
process.send?.({ op: 'ready', id: -1 });
