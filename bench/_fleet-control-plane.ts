// The control-plane side of bench/fleet.ts, run as a child process and driven over IPC: starts the
// control plane, enrolls hosts (each with one running phone) straight into the store, reports its
// own CPU and memory, sends commands through the gateway and counts lost transitions.
import { performance } from 'node:perf_hooks';
import { loadConfig, startControlPlane } from '@cphone/control-plane';
import { hashSecret, insertTestDevice, newHostRow, newSecret } from '@cphone/control-plane/testing';
import pino from 'pino';

export type ServeRequest =
  | { op: 'ready' }
  | { op: 'enroll'; count: number }
  | { op: 'stats' }
  | { op: 'commands'; count: number; concurrency: number }
  | { op: 'lost' };

export type ServeReply =
  | { op: 'ready' }
  | {
      op: 'enrolled';
      port: number;
      caPem: string;
      hosts: { hostId: string; credential: string; deviceId: string }[];
    }
  | { op: 'stats'; rss: number; heapUsed: number; cpuMicros: number; wallMs: number; connected: number }
  | { op: 'commands'; count: number; p50: number; p99: number; perSecond: number }
  | { op: 'lost'; lost: number; unreachable: number };

const env = process.env;
const heartbeatMs = Number(env.FLEET_HEARTBEAT_MS ?? 10_000);
const plane = await startControlPlane(
  loadConfig(
    {},
    {
      dataDir: env.FLEET_DATA_DIR ?? '.data/fleet',
      databaseUrl: env.DATABASE_URL || undefined,
      httpPort: 0,
      grpcHost: '127.0.0.1',
      grpcPort: Number(env.FLEET_GRPC_PORT),
      heartbeatIntervalMs: heartbeatMs,
      heartbeatTtlMs: 3 * heartbeatMs,
      lostGraceMs: 6 * heartbeatMs,
    },
  ),
  { logger: pino({ level: env.FLEET_LOG_LEVEL ?? 'silent' }) },
);
const { db, gateway } = plane.deps;

async function enroll(count: number): Promise<Extract<ServeReply, { op: 'enrolled' }>> {
  const now = new Date();
  const hosts: { hostId: string; credential: string; deviceId: string }[] = [];
  // The first device creates the tenant and image rows the others share.
  const pad = (k: number) => String(k).padStart(6, '0');
  for (let start = 0; start < count; start += 500) {
    const batch = Array.from({ length: Math.min(500, count - start) }, (_, j) => {
      const k = start + j;
      return {
        hostId: `host_${pad(k)}`,
        credentialId: `hcred_${pad(k)}`,
        secret: newSecret('cph'),
        deviceId: `dev_${pad(k)}`,
      };
    });
    await db
      .insertInto('host')
      .values(
        batch.map((h) =>
          newHostRow({
            id: h.hostId,
            name: h.hostId,
            arch: 'arm64',
            capacity_vcpu_millicores: 64_000,
            capacity_memory_mib: 262_144,
            capacity_storage_gib: 4000,
            capacity_devices: 64,
            allocated_vcpu_millicores: 2000,
            allocated_memory_mib: 4096,
            allocated_storage_gib: 16,
            allocated_devices: 1,
            desired_revision: 1,
            update_time: now,
          }),
        ),
      )
      .execute();
    await db
      .insertInto('host_credential')
      .values(
        batch.map((h) => ({
          id: h.credentialId,
          host_id: h.hostId,
          secret_hash: hashSecret(h.secret),
          revoke_time: null,
        })),
      )
      .execute();
    for (const h of batch) {
      hosts.push({ hostId: h.hostId, credential: `${h.credentialId}.${h.secret}`, deviceId: h.deviceId });
    }
  }
  const first = hosts[0];
  if (first) await insertTestDevice(db, { hostId: first.hostId, deviceId: first.deviceId, state: 'running' });
  const template = await db
    .selectFrom('device')
    .selectAll()
    .where('id', '=', first?.deviceId ?? '')
    .executeTakeFirstOrThrow();
  for (let start = 1; start < hosts.length; start += 500) {
    await db
      .insertInto('device')
      .values(
        hosts.slice(start, start + 500).map((h) => ({
          ...template,
          id: h.deviceId,
          display_name: h.deviceId,
          host_id: h.hostId,
          labels: JSON.stringify(template.labels),
          properties: JSON.stringify(template.properties),
          node_selector: JSON.stringify(template.node_selector),
        })),
      )
      .execute();
  }
  return { op: 'enrolled', port: gateway.port, caPem: gateway.caPem ?? '', hosts };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function commands(
  count: number,
  concurrency: number,
): Promise<Extract<ServeReply, { op: 'commands' }>> {
  const hosts = gateway.connectedHosts();
  const times: number[] = [];
  let next = 0;
  const began = performance.now();
  const worker = async () => {
    while (next < count) {
      const k = next++;
      const hostId = hosts[k % hosts.length] ?? '';
      const start = performance.now();
      await gateway.command(
        hostId,
        `dev_${hostId.slice(5)}`,
        { case: 'shell', value: { command: 'echo ok' } },
        new Date(Date.now() + 30_000),
      );
      times.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const perSecond = (times.length * 1000) / (performance.now() - began);
  times.sort((a, b) => a - b);
  return {
    op: 'commands',
    count: times.length,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    perSecond,
  };
}

async function handle(request: ServeRequest): Promise<ServeReply> {
  switch (request.op) {
    case 'ready':
      return { op: 'ready' };
    case 'enroll':
      return enroll(request.count);
    case 'stats': {
      globalThis.gc?.();
      const cpu = process.cpuUsage();
      return {
        op: 'stats',
        rss: process.memoryUsage().rss,
        heapUsed: process.memoryUsage().heapUsed,
        cpuMicros: cpu.user + cpu.system,
        wallMs: performance.now(),
        connected: gateway.connectedHosts().length,
      };
    }
    case 'commands':
      return commands(request.count, request.concurrency);
    case 'lost': {
      const lost = await db
        .selectFrom('device_event')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('to_state', '=', 'lost')
        .executeTakeFirstOrThrow();
      const unreachable = await db
        .selectFrom('host')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('connection', '=', 'unreachable')
        .executeTakeFirstOrThrow();
      return { op: 'lost', lost: Number(lost.n), unreachable: Number(unreachable.n) };
    }
  }
}

process.on('message', (message: ServeRequest & { id: number }) => {
  void handle(message).then(
    (reply) => process.send?.({ ...reply, id: message.id }),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
process.once('SIGTERM', () => {
  void plane.close().then(() => process.exit(0));
});
