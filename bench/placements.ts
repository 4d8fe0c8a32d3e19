// Committed placements per second through the public API on PostgreSQL: a control plane on a
// scratch database with a fleet of host rows, clients calling BatchCreateDevices over HTTP. First
// 100-device batches from several concurrent clients, then single-device creates from 16 clients,
// which the planner commits together (group commit). Client and server share this process and its
// cores; every figure counts only devices the API returned, i.e. committed. Prints figures, never
// asserts a time.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { bearerTransport, loadConfig, startControlPlane } from '@cphone/control-plane';
import { createTestDatabase, insertHosts } from '@cphone/control-plane/testing';
import { DeviceService, ImageService } from '@cphone/proto';
import pino from 'pino';

const HOSTS = Number(process.env.HOSTS ?? 1000);
const BATCHED_DEVICES = Number(process.env.DEVICES ?? 20_000);
const BATCH = 100;
const BATCH_CLIENTS = Number(process.env.BATCH_CLIENTS ?? 4);
const SINGLE_DEVICES = Number(process.env.SINGLE_DEVICES ?? 2_000);
const SINGLE_CLIENTS = Number(process.env.SINGLE_CLIENTS ?? 16);
// The figures are PostgreSQL's: without DATABASE_URL, the local server's scratch database.
process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const database = await createTestDatabase({ kind: 'postgres' });
const dataDir = await mkdtemp(join(tmpdir(), 'cphone-bench-'));
const plane = await startControlPlane(
  // No agent heartbeats here: a long TTL keeps the liveness monitor from declaring the hosts lost.
  loadConfig({}, { dataDir, databaseUrl: database.url, httpPort: 0, grpcPort: 0, heartbeatTtlMs: 3_600_000 }),
  { logger: pino({ level: 'silent' }) },
);

try {
  const token = plane.bootstrapToken ?? '';
  const transport = bearerTransport(plane.httpUrl, token);
  const devices = createClient(DeviceService, transport);
  await createClient(ImageService, transport).createImage({
    imageId: 'android-14',
    image: { displayName: 'Android 14', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
  // 1,000 hosts of 64 phones: room for both runs, so every create commits.
  const zones = ['a', 'b', 'c', 'd'];
  await insertHosts(
    plane.deps.db,
    Array.from({ length: HOSTS }, (_, k) => ({
      id: `host-${String(k).padStart(5, '0')}`,
      labels: { zone: zones[k % zones.length] ?? 'a' },
      vcpu: 128_000,
      memoryMib: 262_144,
      storageGib: 4000,
      devices: 64,
      // No agents run here: the hosts name this replica as holding their streams, so they count
      // as connected (a replica that is gone would be swept by the leader).
      replica: plane.cluster.replicaId,
    })),
  );
  const spec = { imageId: 'android-14', vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 };

  async function run(
    total: number,
    perCall: number,
    clients: number,
  ): Promise<{ seconds: number; placed: number }> {
    let remaining = Math.ceil(total / perCall);
    let placed = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (remaining > 0) {
          remaining--;
          const res = await devices.batchCreateDevices({
            requests: Array.from({ length: perCall }, () => ({ spec })),
          });
          placed += res.devices.length;
        }
      }),
    );
    return { seconds: (performance.now() - started) / 1000, placed };
  }

  // A short warm-up so JIT and connection setup do not land in the first figure.
  await run(BATCH * 2, BATCH, 2);
  const batched = await run(BATCHED_DEVICES, BATCH, BATCH_CLIENTS);
  const single = await run(SINGLE_DEVICES, 1, SINGLE_CLIENTS);
  const batchedRate = batched.placed / batched.seconds;
  const singleRate = single.placed / single.seconds;
  const fmt = (n: number) => n.toFixed(0).padStart(7);
  console.log(`placements bench: ${HOSTS} hosts on PostgreSQL, client and server in one process`);
  console.log(
    `  batched  ${fmt(batchedRate)} placements/s  (${batched.placed} devices, ${BATCH}-device batches, ${BATCH_CLIENTS} clients, ${batched.seconds.toFixed(2)} s)`,
  );
  console.log(
    `  single   ${fmt(singleRate)} placements/s  (${single.placed} devices, 1 per call, ${SINGLE_CLIENTS} clients, group-committed, ${single.seconds.toFixed(2)} s)`,
  );
  console.log(`  single / batched ${(singleRate / batchedRate).toFixed(2)}`);
  console.log(
    JSON.stringify({
      bench: 'placements',
      hosts: HOSTS,
      devices: batched.placed,
      placements_per_s: Math.round(batchedRate),
      single_per_s: Math.round(singleRate),
      single_to_batched: Number((singleRate / batchedRate).toFixed(2)),
    }),
  );
} finally {
  await plane.close();
  await rm(dataDir, { recursive: true, force: true });
  await database.close();
}
