// The API client of bench/placements.ts, run as a child process so its CPU does not share the
// control plane's: BatchCreateDevices as Connect JSON over node:http keep-alive connections, each
// call with a fresh request id (idempotency on), for one of several tenants, its devices of varied
// specs and placements. Closed-loop (N callers, each calling again when answered, for a number of
// calls or seconds, whichever ends first) or open-loop
// (calls on a fixed timetable, latency from the scheduled time, so a stalled server cannot hide
// its queue).
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Target {
  url: string;
  token: string;
  imageId: string;
  tenants: string[];
}

export type ClientRequest =
  | {
      op: 'closed';
      target: Target;
      /** Calls made at most, and for how long new ones start. */
      calls: number;
      seconds: number;
      perCall: number;
      concurrency: number;
      first: number;
    }
  | { op: 'open'; target: Target; rate: number; seconds: number; first: number };

export interface Figures {
  calls: number;
  /** Devices the API returned, i.e. committed. */
  devices: number;
  errors: number;
  firstError: string;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** This process's CPU over the run, in cores. */
  clientCores: number;
}

export type ClientReply = { op: 'ready' } | ({ op: 'figures' } & Figures);

// Sizes of phone, and how they are placed: mostly bin-pack, some spread, some kept apart from the
// tenant's other phones, some held to one zone.
const SPECS = [
  { vcpuMillicores: 1000, memoryMib: 2048, storageGib: 16 },
  { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 },
  { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 64 },
];
const ZONES = ['a', 'b', 'c', 'd'];

function device(target: Target, n: number) {
  const spec = { imageId: target.imageId, ...SPECS[n % SPECS.length] };
  switch (n % 10) {
    case 6:
    case 7:
      return { spec, placement: { spread: 'SPREAD_STRATEGY_SPREAD' } };
    case 8:
      return { spec, placement: { spread: 'SPREAD_STRATEGY_SPREAD_TENANT' } };
    case 9:
      return { spec, placement: { nodeSelector: { zone: ZONES[Math.floor(n / 10) % ZONES.length] } } };
    default:
      return { spec };
  }
}

function body(target: Target, call: number, perCall: number): string {
  return JSON.stringify({
    tenantId: target.tenants[call % target.tenants.length],
    requestId: randomUUID(),
    requests: Array.from({ length: perCall }, (_, j) => device(target, call * perCall + j)),
  });
}

interface Answer {
  ok: boolean;
  devices: number;
  error: string;
}

function send(agent: Agent, target: Target, payload: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(
      `${target.url}/cphone.api.v1.DeviceService/BatchCreateDevices`,
      {
        agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'connect-protocol-version': '1',
          authorization: `Bearer ${target.token}`,
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) return resolve({ ok: false, devices: 0, error: text.slice(0, 300) });
          const parsed = JSON.parse(text) as { devices?: unknown[] };
          resolve({ ok: true, devices: parsed.devices?.length ?? 0, error: '' });
        });
        res.on('error', (e) => resolve({ ok: false, devices: 0, error: String(e) }));
      },
    );
    req.on('error', (e) => resolve({ ok: false, devices: 0, error: String(e) }));
    req.end(payload);
  });
}

function figures(times: number[], answers: Answer[], ms: number, cpu: NodeJS.CpuUsage): Figures {
  times.sort((x, y) => x - y);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? Number.NaN;
  const failed = answers.filter((a) => !a.ok);
  return {
    calls: answers.length,
    devices: answers.reduce((n, a) => n + a.devices, 0),
    errors: failed.length,
    firstError: failed[0]?.error ?? '',
    seconds: ms / 1000,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    clientCores: (cpu.user + cpu.system) / 1000 / ms,
  };
}

async function closed(r: Extract<ClientRequest, { op: 'closed' }>): Promise<Figures> {
  const agent = new Agent({ keepAlive: true, maxSockets: r.concurrency });
  const times: number[] = [];
  const answers: Answer[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const until = t0 + r.seconds * 1000;
  await Promise.all(
    Array.from({ length: r.concurrency }, async () => {
      while (next < r.calls && performance.now() < until) {
        const call = r.first + next++;
        const payload = body(r.target, call, r.perCall);
        const start = performance.now();
        answers.push(await send(agent, r.target, payload));
        times.push(performance.now() - start);
      }
    }),
  );
  const result = figures(times, answers, performance.now() - t0, process.cpuUsage(cpu0));
  agent.destroy();
  return result;
}

async function open(r: Extract<ClientRequest, { op: 'open' }>): Promise<Figures> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const times: number[] = [];
  const answers: Answer[] = [];
  const total = Math.round(r.rate * r.seconds);
  const interval = 1000 / r.rate;
  const inflight: Promise<void>[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < total; k++) {
    const due = t0 + k * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const payload = body(r.target, r.first + k, 1);
    inflight.push(
      send(agent, r.target, payload).then((answer) => {
        answers.push(answer);
        times.push(performance.now() - due);
      }),
    );
  }
  await Promise.all(inflight);
  const result = figures(times, answers, performance.now() - t0, process.cpuUsage(cpu0));
  agent.destroy();
  return result;
}

process.on('message', (message: ClientRequest & { id: number }) => {
  const run = message.op === 'closed' ? closed(message) : open(message);
  void run.then(
    (f) => process.send?.({ op: 'figures', ...f, id: message.id }),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
process.once('SIGTERM', () => process.exit(0));
process.send?.({ op: 'ready', id: -1 });
