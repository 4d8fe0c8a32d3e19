// The control-plane side of bench/placements.ts, run as a child process so its CPU is its own:
// starts the control plane on the bench's PostgreSQL database, enrolls hosts straight into the store
// (rows and credentials, as an operator's enrolment leaves them), and reports its CPU and what its
// fleet view did.
import { performance } from 'node:perf_hooks';
import { loadConfig, startControlPlane } from '@cphone/control-plane';
import { hashSecret, newHostRow, newSecret } from '@cphone/control-plane/testing';
import pino from 'pino';

export type PlaneRequest = { op: 'ready' } | { op: 'enroll'; count: number } | { op: 'stats' };

export interface EnrolledHost {
  hostId: string;
  credential: string;
}

export type PlaneReply =
  | { op: 'ready'; httpUrl: string; token: string; grpcPort: number; caPem: string }
  | { op: 'enrolled'; hosts: EnrolledHost[] }
  | {
      op: 'stats';
      cpuMicros: number;
      wallMs: number;
      connected: number;
      /** Whole reads of the fleet by the placement view, by reason. */
      loads: Record<string, number>;
      /** Host rows it re-read after a change notice. */
      rereads: number;
      /** Time the applier spent deciding on the view (placing, re-checking, applying rows). */
      decisionMs: number;
      /** Hosts in the view, and how often it re-indexed because hosts joined. */
      viewHosts: number;
      reindexes: number;
    };

const env = process.env;
const dataDir = env.PLACEMENTS_DATA_DIR ?? '.data/placements';
const plane = await startControlPlane(
  loadConfig(
    {},
    {
      dataDir,
      databaseUrl: env.DATABASE_URL,
      httpPort: 0,
      grpcHost: '127.0.0.1',
      grpcPort: 0,
      heartbeatIntervalMs: 10_000,
      heartbeatTtlMs: 30_000,
      lostGraceMs: 60_000,
      // The benchmark drives the API far above a customer's default rate limits.
      rateLimitKeyRps: 1_000_000,
      rateLimitKeyBurst: 1_000_000,
      rateLimitTenantRps: 1_000_000,
      rateLimitTenantBurst: 1_000_000,
    },
  ),
  { logger: pino({ level: env.PLACEMENTS_LOG_LEVEL ?? 'silent' }) },
);
const { db, gateway, planner } = plane.deps;

/** Three host sizes, four zones, a tenth with a GPU: enrolled, not yet connected. */
async function enroll(count: number): Promise<EnrolledHost[]> {
  const hosts: EnrolledHost[] = [];
  const sizes = [
    { cpu: 32_000, memory: 65_536, storage: 1000, devices: 16 },
    { cpu: 64_000, memory: 131_072, storage: 2000, devices: 32 },
    { cpu: 16_000, memory: 32_768, storage: 500, devices: 8 },
  ];
  const zones = ['a', 'b', 'c', 'd'];
  const now = new Date();
  for (let start = 0; start < count; start += 500) {
    const batch = Array.from({ length: Math.min(500, count - start) }, (_, j) => {
      const k = start + j;
      const id = String(k).padStart(6, '0');
      return { k, hostId: `host_${id}`, credentialId: `hcred_${id}`, secret: newSecret('cph') };
    });
    await db
      .insertInto('host')
      .values(
        batch.map(({ k, hostId }) => {
          const size = sizes[k % sizes.length] ?? sizes[0];
          return newHostRow({
            id: hostId,
            name: hostId,
            arch: 'arm64',
            labels: JSON.stringify({
              zone: zones[k % zones.length],
              ...(k % 10 === 7 ? { gpu: 'true' } : {}),
            }),
            capacity_vcpu_millicores: size?.cpu ?? 0,
            capacity_memory_mib: size?.memory ?? 0,
            capacity_storage_gib: size?.storage ?? 0,
            capacity_devices: size?.devices ?? 0,
            update_time: now,
          });
        }),
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
  return hosts;
}

async function handle(request: PlaneRequest): Promise<PlaneReply> {
  switch (request.op) {
    case 'ready':
      return {
        op: 'ready',
        httpUrl: plane.httpUrl,
        token: plane.bootstrapToken ?? '',
        grpcPort: gateway.port,
        caPem: gateway.caPem ?? '',
      };
    case 'enroll':
      return { op: 'enrolled', hosts: await enroll(request.count) };
    case 'stats': {
      const cpu = process.cpuUsage();
      await planner.fleet.ready();
      const view = planner.fleet.view;
      return {
        op: 'stats',
        cpuMicros: cpu.user + cpu.system,
        wallMs: performance.now(),
        connected: gateway.connectedHosts().length,
        loads: { ...planner.fleet.loads },
        rereads: planner.fleet.rereads,
        decisionMs: planner.fleet.decisionMs,
        viewHosts: view.size,
        reindexes: view.reindexes,
      };
    }
  }
}

process.on('message', (message: PlaneRequest & { id: number }) => {
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
process.send?.({ op: 'ready', id: -1 });
