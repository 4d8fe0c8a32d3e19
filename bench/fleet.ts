// A fleet of host agents on one control plane, commands through the public API. The control plane
// runs in a child process on PostgreSQL (DATABASE_URL, else the local server's scratch database);
// the agents run in `--processes` children (default 4, file descriptors and event loops split
// between them), each agent the host agent's own Session on its own TLS connection to the gateway
// (the connection count printed is read from the kernel's socket table, not assumed). Every host
// has room for one phone; one device per host is made through BatchCreateDevices with a tenant's
// API key, and the agents report them RUNNING.
//
// Figures:
// - commands: ExecShell through the public API (Connect over HTTP/1.1 with the API key: auth,
//   audit row, gateway, the agent's stream and its CommandResult back), open-loop at `--rate`
//   calls/s for `--seconds`, each on a random device, latency from the scheduled send time. The
//   baseline, measured the same way in the same run: ExecShell with one agent connected.
// - memory: the control-plane process's RSS (JS heap, native buffers, TLS and HTTP/2 state alike)
//   after GC at 1, 25, 50, 75 and 100 % of the agents connected; per agent is the least-squares
//   slope over those points.
// - reconnect: the control-plane process is stopped (SIGTERM) and started again on the same port;
//   the time from the stop to every agent welcomed again, with the real agent backoff.
// Client, agents, control plane and PostgreSQL share this machine's cores. On the 2-core development
// machine (shared with other work) all 10,000 agents connect and hold their own connections, but
// the control plane saturates: ExecShell latency is seconds, and after the restart fewer than half
// the agents are back within the reconnect timeout (figures in control-plane/README.md). Prints
// figures, never asserts a time.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createClient } from '@connectrpc/connect';
import { bearerTransport } from '@cphone/control-plane';
import { createTestDatabase } from '@cphone/control-plane/testing';
import { ApiKeyService, DeviceService, ImageService, Role, TenantKind, TenantService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { arg } from './_args.js';
import { Child } from './_child.js';
import type { AgentsReply, AgentsRequest, FleetHost } from './_fleet-agents.js';
import type { ServeReply, ServeRequest } from './_fleet-control-plane.js';

const AGENTS = arg('agents', 10_000);
const PROCESSES = arg('processes', 4);
const RATE = arg('rate', 100);
const SECONDS = arg('seconds', 15);
// New agents a second while the fleet first connects (the reconnect after the restart is not paced:
// each agent comes back on its own backoff).
const CONNECT_RATE = arg('connect-rate', 250);
const RECONNECT_TIMEOUT_S = arg('reconnect-timeout', 240);
const STAGES = [0.25, 0.5, 0.75, 1].map((f) => Math.round(AGENTS * f));

type Stats = Extract<ServeReply, { op: 'stats' }>;
type AgentStats = Extract<AgentsReply, { op: 'stats' }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (since: number) => (performance.now() - since) / 1000;
const kib = (bytes: number) => bytes / 1024;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const database = await createTestDatabase({ kind: 'postgres' });
const dataDir = await mkdtemp(join(tmpdir(), 'cphone-fleet-'));
const planeEnv = { FLEET_DATA_DIR: dataDir, DATABASE_URL: database.url ?? '' };

async function startPlane(grpcPort: number) {
  const child = Child.start<ServeRequest, ServeReply>('control plane', './_fleet-control-plane.ts', {
    env: { ...planeEnv, FLEET_GRPC_PORT: String(grpcPort) },
  });
  const ready = await child.ask<Extract<ServeReply, { op: 'ready' }>>({ op: 'ready' });
  return { child, ...ready };
}

/** Established TCP connections whose local end is the gateway's port: the agents' connections. */
async function gatewayConnections(port: number): Promise<number> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let count = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const table = await readFile(file, 'utf8').catch(() => '');
    for (const line of table.split('\n')) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '01' && local?.endsWith(hex)) count++;
    }
  }
  return count;
}

/** Busy and total jiffies of all of this machine's cores (other work on the machine included). */
async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n')[0] ?? '';
  const [, ...fields] = line.trim().split(/\s+/).map(Number);
  const total = fields.reduce((s, n) => s + n, 0);
  // idle and iowait
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

/** Least-squares slope and R² of y over x. */
function fit(points: { x: number; y: number }[]): { slope: number; r2: number } {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
    syy += (p.y - my) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

let plane = await startPlane(0);
const grpcPort = plane.grpcPort;
const agents = Array.from({ length: PROCESSES }, (_, i) =>
  Child.start<AgentsRequest, AgentsReply>(`agents ${i}`, './_fleet-agents.ts'),
);
await Promise.all(agents.map((a) => a.ready()));

async function agentStats(): Promise<AgentStats> {
  const all = await Promise.all(agents.map((a) => a.ask<AgentStats>({ op: 'stats' })));
  const sum = (k: keyof Omit<AgentStats, 'op'>) => all.reduce((s, r) => s + r[k], 0);
  return {
    op: 'stats',
    agents: sum('agents'),
    connected: sum('connected'),
    welcomedSinceMark: sum('welcomedSinceMark'),
    welcomes: sum('welcomes'),
    running: sum('running'),
    commands: sum('commands'),
    rss: sum('rss'),
  };
}

const waitLong = { timeoutMs: 600_000, intervalMs: 100 };

try {
  const { hosts, caPem } = await plane.child.ask<Extract<ServeReply, { op: 'enrolled' }>>({
    op: 'enroll',
    count: AGENTS,
  });
  const admin = bearerTransport(plane.httpUrl, plane.bootstrapToken ?? '');
  await createClient(ImageService, admin).createImage({
    imageId: 'android-14',
    image: { displayName: 'Android 14', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
  const made = await createClient(TenantService, admin).createTenant({
    kind: TenantKind.CUSTOMER,
    displayName: 'bench',
  });
  const { secret } = await createClient(ApiKeyService, admin).createApiKey({
    tenantId: made.tenant?.tenantId ?? '',
    displayName: 'bench',
    role: Role.TENANT_USER,
  });
  const devices = createClient(DeviceService, bearerTransport(plane.httpUrl, secret));
  const spec = { imageId: 'android-14', vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 };

  /** Starts agents [from, to): agent k runs in process k % PROCESSES. */
  let started = 0;
  async function connect(to: number): Promise<number> {
    const t = performance.now();
    const share: FleetHost[][] = agents.map(() => []);
    for (let k = started; k < to; k++) {
      const host = hosts[k];
      if (host) share[k % PROCESSES]?.push(host);
    }
    started = to;
    await Promise.all(
      agents.map((a, i) =>
        a.ask({
          op: 'start',
          hosts: share[i] ?? [],
          port: grpcPort,
          caPem,
          perSecond: CONNECT_RATE / PROCESSES,
        }),
      ),
    );
    await waitFor('agents welcomed', agentStats, (s) => s.welcomedSinceMark >= to, waitLong);
    return seconds(t);
  }

  const ids: string[] = [];
  const running = () => plane.child.ask<Extract<ServeReply, { op: 'running' }>>({ op: 'running' });

  /** ExecShell open-loop on random devices of `on`; latency from each call's scheduled time. */
  async function commands(on: readonly string[]) {
    const times: number[] = [];
    const failures = new Map<string, number>();
    const total = Math.round(RATE * SECONDS);
    const interval = 1000 / RATE;
    const calls: Promise<void>[] = [];
    const cpu0 = await plane.child.ask<Stats>({ op: 'stats' });
    const machine0 = await machineCpu();
    const began = performance.now();
    for (let sent = 0; sent < total; sent++) {
      const scheduled = began + sent * interval;
      const wait = scheduled - performance.now();
      if (wait > 1) await sleep(wait);
      const deviceId = on[Math.floor(Math.random() * on.length)] ?? '';
      calls.push(
        devices.execShell({ deviceId, command: 'echo ok' }).then(
          (res) => {
            if (res.exitCode === 0) times.push(performance.now() - scheduled);
            else failures.set(`exit ${res.exitCode}`, (failures.get(`exit ${res.exitCode}`) ?? 0) + 1);
          },
          (err: unknown) => {
            const key = String(err).slice(0, 120);
            failures.set(key, (failures.get(key) ?? 0) + 1);
          },
        ),
      );
    }
    await Promise.all(calls);
    const ms = performance.now() - began;
    const machine1 = await machineCpu();
    const cpu1 = await plane.child.ask<Stats>({ op: 'stats' });
    times.sort((a, b) => a - b);
    return {
      answered: times.length,
      failures,
      p50: percentile(times, 0.5),
      p99: percentile(times, 0.99),
      max: times.at(-1) ?? Number.NaN,
      perSecond: (times.length * 1000) / ms,
      cpuPct: ((cpu1.cpuMicros - cpu0.cpuMicros) / 1000 / (cpu1.wallMs - cpu0.wallMs)) * 100,
      loopP99Ms: cpu1.loopP99Ms,
      loopMaxMs: cpu1.loopMaxMs,
      // All cores busy, as a share of the machine: this bench's processes and any other work.
      machinePct: ((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * 100,
    };
  }
  type Commands = Awaited<ReturnType<typeof commands>>;
  const printCommands = (name: string, c: Commands) =>
    console.log(
      `  ${name.padEnd(28)} p50 ${c.p50.toFixed(2).padStart(6)} ms  p99 ${c.p99.toFixed(2).padStart(6)} ms  max ${c.max.toFixed(1).padStart(6)} ms  ${c.answered} answered (${c.perSecond.toFixed(0)}/s), ${[...c.failures.values()].reduce((s, n) => s + n, 0)} failed; control plane ${c.cpuPct.toFixed(0)} % of a core, event-loop delay p99 ${c.loopP99Ms.toFixed(0)} ms / max ${c.loopMaxMs.toFixed(0)} ms; machine ${c.machinePct.toFixed(0)} % busy${c.failures.size ? ` ${JSON.stringify(Object.fromEntries(c.failures))}` : ''}`,
    );

  console.log(
    `fleet bench: ${AGENTS} agents in ${PROCESSES} processes, control plane in its own process on PostgreSQL; ExecShell at ${RATE}/s for ${SECONDS} s`,
  );

  // The baseline: one agent, one device, the same calls.
  await connect(1);
  const first = await devices.batchCreateDevices({ requests: [{ spec }] });
  ids.push(...first.devices.map((d) => d.deviceId));
  await waitFor('the first device running', running, (r) => r.running === 1, waitLong);
  const baseline = await commands(ids);
  console.log('commands (ExecShell through the API):');
  printCommands('baseline, 1 agent', baseline);

  // Memory with 1, 25, 50, 75 and 100 % of the agents connected.
  await sleep(1000);
  const points: Stats[] = [await plane.child.ask<Stats>({ op: 'stats' })];
  const connectT0 = performance.now();
  for (const stage of STAGES) {
    const took = await connect(stage);
    // Let the Welcome's desired-set sync and first heartbeats settle before sampling.
    await sleep(2000);
    const s = await plane.child.ask<Stats>({ op: 'stats' });
    points.push(s);
    console.log(
      `  ${String(stage).padStart(6)} agents welcomed (${took.toFixed(1)} s for this step): control plane RSS ${mib(s.rss)} MiB, heap ${mib(s.heapUsed)} MiB, external ${mib(s.external)} MiB, ${s.connected} streams`,
    );
  }
  const connectS = seconds(connectT0);
  const connections = await gatewayConnections(grpcPort);
  const agentSide = await agentStats();
  console.log(
    `connect: ${AGENTS} agents welcomed in ${connectS.toFixed(1)} s (including the pauses to sample memory); ${connections} TCP connections established to the gateway port (each agent's channel has a connection of its own; any above the agent count are idle: grpc-js reopens a connection for a channel the agent closed after a failed attempt); agent processes RSS ${mib(agentSide.rss)} MiB in all`,
  );
  const xy = (y: (s: Stats) => number) => points.map((s) => ({ x: s.connected, y: y(s) }));
  const rss = fit(xy((s) => s.rss));
  const heap = fit(xy((s) => s.heapUsed));
  const external = fit(xy((s) => s.external));
  const memPerAgentKiB = kib(rss.slope);
  console.log(
    `memory per agent (slope over ${points.length} points, ${points.map((s) => s.connected).join('/')} streams): RSS ${memPerAgentKiB.toFixed(1)} KiB (R² ${rss.r2.toFixed(3)}), of which JS heap ${kib(heap.slope).toFixed(1)} KiB, external ${kib(external.slope).toFixed(1)} KiB`,
  );
  if (memPerAgentKiB < 0)
    console.log('  the RSS fit is negative: noise, not a figure; rerun with more agents');

  // One device per remaining host, through the API.
  const devicesT0 = performance.now();
  let left = AGENTS - 1;
  let batches = 0;
  let retries = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (left > 0) {
        const n = Math.min(100, left);
        left -= n;
        // The idempotency key makes a retry after a lost answer create nothing twice.
        const request = {
          requestId: `fleet-${batches++}`,
          requests: Array.from({ length: n }, () => ({ spec })),
        };
        for (let attempt = 1; ; attempt++) {
          try {
            const res = await devices.batchCreateDevices(request);
            ids.push(...res.devices.map((d) => d.deviceId));
            break;
          } catch (err) {
            if (attempt === 3) throw err;
            retries++;
          }
        }
      }
    }),
  );
  const placedS = seconds(devicesT0);
  await waitFor('every device running', running, (r) => r.running === AGENTS, waitLong);
  console.log(
    `devices: ${ids.length} created through the API in ${placedS.toFixed(1)} s${retries ? ` (${retries} calls retried)` : ''}, all RUNNING on their agents at ${seconds(devicesT0).toFixed(1)} s`,
  );

  const idle0 = await plane.child.ask<Stats>({ op: 'stats' });
  await sleep(10_000);
  const idle1 = await plane.child.ask<Stats>({ op: 'stats' });
  const idleCpuPct = ((idle1.cpuMicros - idle0.cpuMicros) / 1000 / (idle1.wallMs - idle0.wallMs)) * 100;
  console.log(
    `idle: control plane ${idleCpuPct.toFixed(1)} % of a core over 10 s of heartbeats and pings (${AGENTS} agents, 10 s heartbeat interval)`,
  );

  const fleet = await commands(ids);
  console.log('commands (ExecShell through the API):');
  printCommands('baseline, 1 agent', baseline);
  printCommands(`${AGENTS} agents`, fleet);
  console.log(`  p99 / baseline p99 ${(fleet.p99 / baseline.p99).toFixed(2)}`);

  // Reconnect: stop the control plane, start it again on the same port.
  await Promise.all(agents.map((a) => a.ask({ op: 'mark' })));
  const restartT0 = performance.now();
  await plane.child.stop();
  const stoppedS = seconds(restartT0);
  plane = await startPlane(grpcPort);
  const upS = seconds(restartT0);
  // Progress every 15 s, up to --reconnect-timeout seconds; past that the figure is how many are back.
  let back = await agentStats();
  let reported = 0;
  while (back.welcomedSinceMark < AGENTS && seconds(restartT0) < RECONNECT_TIMEOUT_S) {
    await sleep(100);
    back = await agentStats();
    if (seconds(restartT0) - reported >= 15) {
      reported = seconds(restartT0);
      console.log(`  ${back.welcomedSinceMark} agents welcomed again at ${reported.toFixed(0)} s`);
    }
  }
  const reconnectAllS = back.welcomedSinceMark === AGENTS ? seconds(restartT0) : undefined;
  console.log(
    reconnectAllS === undefined
      ? `reconnect: control plane stopped in ${stoppedS.toFixed(1)} s, serving again at ${upS.toFixed(1)} s; only ${back.welcomedSinceMark} of ${AGENTS} agents welcomed again at ${seconds(restartT0).toFixed(0)} s (--reconnect-timeout): no reconnect_all_s`
      : `reconnect: control plane stopped in ${stoppedS.toFixed(1)} s, serving again at ${upS.toFixed(1)} s, every agent welcomed again at ${reconnectAllS.toFixed(1)} s (${(reconnectAllS - upS).toFixed(1)} s after it served)`,
  );
  await sleep(3000);
  const after = await plane.child.ask<Extract<ServeReply, { op: 'lost' }>>({ op: 'lost' });
  const afterConnections = await gatewayConnections(grpcPort);
  console.log(
    `after: ${after.lost} devices went lost, ${after.unreachable} hosts unreachable, ${afterConnections} TCP connections to the gateway`,
  );

  console.log(
    JSON.stringify({
      bench: 'fleet',
      agents: AGENTS,
      connections,
      command_p99_ms: Number(fleet.p99.toFixed(2)),
      reconnect_all_s: reconnectAllS === undefined ? null : Number(reconnectAllS.toFixed(2)),
      reconnected_agents: back.welcomedSinceMark,
      mem_per_agent_kib: Number(memPerAgentKiB.toFixed(1)),
      baseline_command_p99_ms: Number(baseline.p99.toFixed(2)),
      command_p50_ms: Number(fleet.p50.toFixed(2)),
      agent_processes: PROCESSES,
    }),
  );
} finally {
  await Promise.all(agents.map((a) => a.ask({ op: 'close' }).then(() => a.stop())));
  await plane.child.stop();
  await database.close();
  await rm(dataDir, { recursive: true, force: true });
}
