import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { create } from '@bufbuild/protobuf';
import { createAgentClient, createTestDatabase } from '@cphone/control-plane/testing';
import { agentv1, type GrpcClient } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import type * as grpc from '@grpc/grpc-js';
import { arg } from './_args.js';
import { Child } from './_child.js';
import type { ServeReply, ServeRequest } from './_fleet-control-plane.js';

const HEARTBEAT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The control plane in a child process, driven over IPC; it answers once it serves. */
async function startControlPlaneChild(env: Record<string, string>): Promise<Child<ServeRequest, ServeReply>> {
  const plane = Child.start<ServeRequest, ServeReply>('control plane', './_fleet-control-plane.ts', { env });
  await plane.ask({ op: 'ready' });
  return plane;
}

interface Agent {
  hostId: string;
  credential: string;
  deviceId: string;
  call: grpc.ClientDuplexStream<unknown, agentv1.ControlMessage> | undefined;
  welcomes: number;
  /** Welcomed on the current stream: heartbeats flow from then on, as from a real agent. */
  live: boolean;
  backoffMs: number;
  seq: bigint;
}

class Fleet {
  welcomed = 0;
  /** Stream ends seen by the agents, by status code and details. */
  readonly ends = new Map<string, number>();
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  constructor(
    readonly agents: Agent[],
    readonly clients: GrpcClient<typeof agentv1.AgentService>[],
  ) {}

  open(agent: Agent, index: number): void {
    if (this.#stopped) return;
    const client = this.clients[index % this.clients.length];
    if (!client) return;
    const call = client.connect() as unknown as grpc.ClientDuplexStream<unknown, agentv1.ControlMessage>;
    agent.call = call;
    call.on('data', (message: agentv1.ControlMessage) => {
      const body = message.body;
      if (body.case === 'welcome') {
        agent.welcomes++;
        agent.live = true;
        agent.backoffMs = 200;
        this.welcomed++;
      } else if (body.case === 'command') {
        call.write(
          create(agentv1.AgentMessageSchema, {
            body: {
              case: 'commandResult',
              value: {
                commandId: body.value.commandId,
                code: agentv1.CommandCode.OK,
                result: { case: 'shell', value: { exitCode: 0, stdout: Buffer.from('ok\n') } },
              },
            },
          }),
        );
      }
    });
    let retried = false;
    const retry = (status?: { code?: number; details?: string }) => {
      if (retried || this.#stopped) return;
      const key = `${status?.code ?? '?'} ${status?.details ?? ''}`.slice(0, 80);
      this.ends.set(key, (this.ends.get(key) ?? 0) + 1);
      retried = true;
      agent.call = undefined;
      agent.live = false;
      // Exponential backoff with full jitter, as the real agent does.
      const delay = Math.random() * agent.backoffMs;
      agent.backoffMs = Math.min(agent.backoffMs * 2, 5000);
      setTimeout(() => this.open(agent, index), delay);
    };
    call.on('error', retry);
    call.on('status', retry);
    call.write(
      create(agentv1.AgentMessageSchema, {
        body: {
          case: 'hello',
          value: {
            hostId: agent.hostId,
            credential: agent.credential,
            protocolVersion: 1,
            agentVersion: 'bench',
            arch: 'arm64',
            runtimeKind: 'sim',
            agentInstanceId: 'bench',
            devices: [{ deviceId: agent.deviceId, state: agentv1.DeviceState.RUNNING, specRevision: 1n }],
          },
        },
      }),
    );
  }

  /** Heartbeats every HEARTBEAT_MS per agent, spread evenly over the interval. */
  startHeartbeats(): void {
    const tick = 100;
    const slices = HEARTBEAT_MS / tick;
    let slice = 0;
    this.#timer = setInterval(() => {
      for (let i = slice; i < this.agents.length; i += slices) {
        const agent = this.agents[i];
        if (!agent?.call || !agent.live) continue;
        agent.seq++;
        agent.call.write(
          create(agentv1.AgentMessageSchema, { body: { case: 'heartbeat', value: { seq: agent.seq } } }),
        );
      }
      slice = (slice + 1) % slices;
    }, tick);
  }

  close(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const agent of this.agents) agent.call?.cancel();
    for (const client of this.clients) client.close();
  }
}

async function main(): Promise<void> {
  const n = arg('agents', 10_000);
  const channels = arg('channels', Math.max(1, Math.ceil(n / 500)));
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-fleet-'));
  const database = process.env.DATABASE_URL ? await createTestDatabase({ kind: 'postgres' }) : undefined;
  const env = {
    FLEET_DATA_DIR: dataDir,
    // The first start binds a free port; the restart below binds the one it got.
    FLEET_GRPC_PORT: '0',
    FLEET_HEARTBEAT_MS: String(HEARTBEAT_MS),
    ...(database?.url ? { DATABASE_URL: database.url } : { DATABASE_URL: '' }),
  };
  console.log(`fleet: ${n} agents over ${channels} channels, database ${database ? 'postgres' : 'pglite'}`);
  let plane = await startControlPlaneChild(env);
  const enrolled = await plane.ask<Extract<ServeReply, { op: 'enrolled' }>>({ op: 'enroll', count: n });
  const before = await plane.ask<Extract<ServeReply, { op: 'stats' }>>({ op: 'stats' });

  // Short channel reconnect backoff: grpc-js would otherwise wait up to minutes after a long outage.
  const clientOptions = {
    'grpc.keepalive_time_ms': 120_000,
    'grpc-node.max_session_memory': 1 << 30,
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': 2000,
  };
  const clients = Array.from({ length: channels }, () =>
    createAgentClient(enrolled.port, enrolled.caPem, clientOptions),
  );
  const agents: Agent[] = enrolled.hosts.map((h) => ({
    ...h,
    call: undefined,
    welcomes: 0,
    live: false,
    backoffMs: 200,
    seq: 0n,
  }));
  const fleet = new Fleet(agents, clients);
  const t0 = performance.now();
  fleet.startHeartbeats();
  const progress = setInterval(
    () =>
      console.log(
        `  ${agents.filter((a) => a.welcomes > 0).length} welcomed after ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      ),
    15_000,
  );
  for (let i = 0; i < agents.length; i++) {
    const agent = agents[i];
    if (agent) fleet.open(agent, i);
    if (i % 500 === 499) await sleep(10);
  }
  // Polled every 50 ms at most: the connect time printed below is read when the wait returns.
  await waitFor(
    'all agents welcomed',
    () => agents.filter((a) => a.welcomes === 0).length,
    (left) => left === 0,
    { timeoutMs: 600_000, intervalMs: 50 },
  );
  clearInterval(progress);
  console.log(
    `connect: ${n} streams welcomed in ${((performance.now() - t0) / 1000).toFixed(1)} s (${fleet.welcomed - n} re-welcomes)`,
  );
  await sleep(3000);
  if (fleet.ends.size > 0) console.log('  stream ends so far:', Object.fromEntries(fleet.ends));
  const loaded = await plane.ask<Extract<ServeReply, { op: 'stats' }>>({ op: 'stats' });
  const memPerStreamKiB = (loaded.rss - before.rss) / n / 1024;
  // RSS also moves with the V8 heap returning pages and PGlite's WASM memory; the live JS heap
  // after a GC is the steadier per-stream figure, printed beside it.
  const heapPerStreamKiB = (loaded.heapUsed - before.heapUsed) / n / 1024;
  console.log(
    `memory: RSS ${(before.rss / 2 ** 20).toFixed(0)} MiB -> ${(loaded.rss / 2 ** 20).toFixed(0)} MiB, ${memPerStreamKiB.toFixed(1)} KiB per stream (JS heap ${heapPerStreamKiB.toFixed(1)} KiB per stream; ${loaded.connected} connected)`,
  );

  const windowMs = 2 * HEARTBEAT_MS;
  const cpu0 = await plane.ask<Extract<ServeReply, { op: 'stats' }>>({ op: 'stats' });
  await sleep(windowMs);
  const cpu1 = await plane.ask<Extract<ServeReply, { op: 'stats' }>>({ op: 'stats' });
  const cpuSharePct = ((cpu1.cpuMicros - cpu0.cpuMicros) / 1000 / (cpu1.wallMs - cpu0.wallMs)) * 100;
  console.log(
    `cpu: ${cpuSharePct.toFixed(1)} % of one core over ${windowMs / 1000} s of heartbeats (${((n * 1000) / HEARTBEAT_MS).toFixed(0)}/s)`,
  );

  const concurrency = arg('concurrency', 10);
  const commands = await plane.ask<Extract<ServeReply, { op: 'commands' }>>({
    op: 'commands',
    count: 1000,
    concurrency,
  });
  console.log(
    `commands: ${commands.count} shell round trips (${concurrency} in flight), p50 ${commands.p50.toFixed(2)} ms, p99 ${commands.p99.toFixed(2)} ms, ${commands.perSecond.toFixed(0)}/s`,
  );

  const restartAt = performance.now();
  const welcomedBefore = fleet.welcomed;
  await plane.stop();
  const stoppedS = (performance.now() - restartAt) / 1000;
  plane = await startControlPlaneChild({ ...env, FLEET_GRPC_PORT: String(enrolled.port) });
  const upS = (performance.now() - restartAt) / 1000;
  const again = agents.map((a) => a.welcomes);
  await waitFor(
    'all agents welcomed again',
    () => agents.filter((a, i) => a.welcomes <= (again[i] ?? 0)).length,
    (left) => left === 0,
    { timeoutMs: 600_000, intervalMs: 50 },
  );
  const reconnectAllS = (performance.now() - restartAt) / 1000;
  console.log(
    `restart: stopped in ${stoppedS.toFixed(1)} s, up again at ${upS.toFixed(1)} s, all ${n} agents welcomed at ${reconnectAllS.toFixed(1)} s (${(reconnectAllS - upS).toFixed(1)} s after the new process was ready; ${fleet.welcomed - welcomedBefore} welcomes)`,
  );
  await sleep(3000);
  const outcome = await plane.ask<Extract<ServeReply, { op: 'lost' }>>({ op: 'lost' });
  console.log(`lost transitions: ${outcome.lost}, hosts unreachable: ${outcome.unreachable}`);

  fleet.close();
  await plane.stop();
  await database?.close();
  await rm(dataDir, { recursive: true, force: true });
  console.log(
    JSON.stringify({
      bench: 'fleet',
      agents: n,
      cpu_share_pct: Number(cpuSharePct.toFixed(2)),
      mem_per_stream_kib: Number(memPerStreamKiB.toFixed(1)),
      heap_per_stream_kib: Number(heapPerStreamKiB.toFixed(1)),
      cmd_p50_ms: Number(commands.p50.toFixed(2)),
      cmd_p99_ms: Number(commands.p99.toFixed(2)),
      reconnect_all_s: Number(reconnectAllS.toFixed(2)),
      false_lost: outcome.lost,
    }),
  );
}

await main();
