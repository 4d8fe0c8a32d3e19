// The control plane of bench/fleet.ts, run as a child process so its memory and CPU are its own, and
// driven over IPC: starts the control plane on the bench's database, enrolls hosts straight into
// the store (a credential each, and room for one phone), and reports its own memory, CPU and
// event-loop delay. No command starts here: the bench sends them through the public API.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { loadConfig, startControlPlane } from '@cphone/control-plane';
import { hashSecret, newHostRow, newSecret } from '@cphone/control-plane/testing';
import pino from 'pino';
import type { FleetHost } from './_fleet-agents.js';

export type ServeRequest =
  | { op: 'ready' }
  | { op: 'enroll'; count: number }
  | { op: 'stats' }
  | { op: 'running' }
  | { op: 'lost' };

export type ServeReply =
  | { op: 'ready'; grpcPort: number; httpUrl: string; bootstrapToken: string | undefined }
  | { op: 'enrolled'; caPem: string; hosts: FleetHost[] }
  | {
      op: 'stats';
      rss: number;
      heapUsed: number;
      external: number;
      arrayBuffers: number;
      cpuMicros: number;
      wallMs: number;
      connected: number;
      /** Event-loop delay since the previous stats, ms: how long work waited for this process's thread. */
      loopP99Ms: number;
      loopMaxMs: number;
    }
  | { op: 'running'; running: number }
  | { op: 'lost'; lost: number; unreachable: number };

const env = process.env;
const plane = await startControlPlane(
  loadConfig(
    {},
    {
      dataDir: env.FLEET_DATA_DIR ?? '.data/fleet',
      databaseUrl: env.DATABASE_URL,
      httpPort: 0,
      grpcHost: '127.0.0.1',
      grpcPort: Number(env.FLEET_GRPC_PORT ?? 0),
      // The benchmark drives the API far above a customer's default rate limits.
      rateLimitKeyRps: 1_000_000,
      rateLimitKeyBurst: 1_000_000,
      rateLimitTenantRps: 1_000_000,
      rateLimitTenantBurst: 1_000_000,
    },
  ),
  { logger: pino({ level: env.FLEET_LOG_LEVEL ?? 'silent' }) },
);
const { db, gateway } = plane.deps;
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();

async function enroll(count: number): Promise<Extract<ServeReply, { op: 'enrolled' }>> {
  const hosts: FleetHost[] = [];
  const pad = (k: number) => String(k).padStart(5, '0');
  for (let start = 0; start < count; start += 500) {
    const batch = Array.from({ length: Math.min(500, count - start) }, (_, j) => ({
      hostId: `host-${pad(start + j)}`,
      credentialId: `hcred-${pad(start + j)}`,
      secret: newSecret('cph'),
    }));
    await db
      .insertInto('host')
      .values(
        batch.map((h) =>
          newHostRow({
            id: h.hostId,
            name: h.hostId,
            arch: 'arm64',
            // One phone per host: the scheduler then puts one device on every connected host.
            capacity_vcpu_millicores: 8000,
            capacity_memory_mib: 16_384,
            capacity_storage_gib: 256,
            capacity_devices: 1,
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
    for (const h of batch) hosts.push({ hostId: h.hostId, credential: `${h.credentialId}.${h.secret}` });
  }
  return { op: 'enrolled', caPem: gateway.caPem ?? '', hosts };
}

async function handle(request: ServeRequest): Promise<ServeReply> {
  switch (request.op) {
    case 'ready':
      return {
        op: 'ready',
        grpcPort: gateway.port,
        httpUrl: plane.httpUrl,
        bootstrapToken: plane.bootstrapToken,
      };
    case 'enroll':
      return enroll(request.count);
    case 'stats': {
      const delay = { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
      // Twice: the first collection's finalizers free more for the second.
      globalThis.gc?.();
      globalThis.gc?.();
      // After the forced collections, which would otherwise count as the next window's delay.
      loop.reset();
      const memory = process.memoryUsage();
      const cpu = process.cpuUsage();
      return {
        op: 'stats',
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        external: memory.external,
        arrayBuffers: memory.arrayBuffers,
        cpuMicros: cpu.user + cpu.system,
        wallMs: performance.now(),
        connected: gateway.connectedHosts().length,
        loopP99Ms: delay.p99,
        loopMaxMs: delay.max,
      };
    }
    case 'running': {
      const row = await db
        .selectFrom('device')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('state', '=', 'running')
        .executeTakeFirstOrThrow();
      return { op: 'running', running: Number(row.n) };
    }
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
