// Public API throughput and latency: GetDevice and ListDevices (pages of 50) through the control
// plane's HTTP port on PostgreSQL, ~100 devices made through the API, Connect JSON over HTTP/1.1
// keep-alive with a tenant's API key. The client runs in a child process. First the most each call
// answers closed-loop with 10 and 50 connections, then an open-loop client on a fixed timetable at
// 50% and 80% of that most (latency from the scheduled send time). The baseline, measured the same
// way in the same run: a bare node:http server in its own process answering the same response
// bytes. `--seconds 5` per measurement. Prints figures, never asserts a time.

import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@connectrpc/connect';
import { bearerTransport, loadConfig, startControlPlane } from '@cphone/control-plane';
import { createTestDatabase, insertHosts } from '@cphone/control-plane/testing';
import { ApiKeyService, DeviceService, ImageService, Role, TenantKind, TenantService } from '@cphone/proto';
import pino from 'pino';
import type { BareReply, BareRequest } from './_api-bare.js';
import type { Call, ClientReply, ClientRequest, Figures } from './_api-client.js';
import { arg } from './_args.js';
import { Child } from './_child.js';

const SECONDS = arg('seconds', 5);
const DEVICES = arg('devices', 100);
const CONNECTIONS = [10, 50];
const LOADS = [0.5, 0.8];
// Enough sockets that the open-loop client never waits for one at these rates.
const OPEN_CONNECTIONS = 64;

process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const database = await createTestDatabase({ kind: 'postgres' });
const dataDir = await mkdtemp(join(tmpdir(), 'cphone-bench-'));
const plane = await startControlPlane(
  // No agent heartbeats here: a long TTL keeps the liveness monitor from declaring the host lost.
  loadConfig(
    {},
    {
      dataDir,
      databaseUrl: database.url,
      httpPort: 0,
      grpcPort: 0,
      heartbeatTtlMs: 3_600_000,
      // The benchmark drives the API far above a customer's default rate limits.
      rateLimitKeyRps: 1_000_000,
      rateLimitKeyBurst: 1_000_000,
      rateLimitTenantRps: 1_000_000,
      rateLimitTenantBurst: 1_000_000,
    },
  ),
  { logger: pino({ level: 'silent' }) },
);
const client = Child.start<ClientRequest, ClientReply>('api client', './_api-client.ts');
const bare = Child.start<BareRequest, BareReply>('bare server', './_api-bare.ts');

/** One POST as the client child sends it, answered with the response body (to serve bare). */
function once(call: Call): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      call.url + call.path,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'connect-protocol-version': '1',
          authorization: call.authorization,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(call.body);
  });
}

try {
  const admin = bearerTransport(plane.httpUrl, plane.bootstrapToken ?? '');
  await createClient(ImageService, admin).createImage({
    imageId: 'android-14',
    image: { displayName: 'Android 14', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
  // One host with room for every device; no agent runs, so it names this replica as holding its
  // stream and counts as connected.
  await insertHosts(plane.deps.db, [
    {
      id: 'host-00000',
      vcpu: 1_000_000,
      memoryMib: 4_194_304,
      storageGib: 100_000,
      devices: DEVICES,
      replica: plane.cluster.replicaId,
    },
  ]);
  const made = await createClient(TenantService, admin).createTenant({
    kind: TenantKind.CUSTOMER,
    displayName: 'bench',
  });
  const tenantId = made.tenant?.tenantId ?? '';
  const { secret } = await createClient(ApiKeyService, admin).createApiKey({
    tenantId,
    displayName: 'bench',
    role: Role.TENANT_USER,
  });
  const spec = { imageId: 'android-14', vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 };
  const devices = createClient(DeviceService, bearerTransport(plane.httpUrl, secret));
  const ids: string[] = [];
  for (let left = DEVICES; left > 0; left -= 100) {
    const res = await devices.batchCreateDevices({
      requests: Array.from({ length: Math.min(100, left) }, () => ({ spec })),
    });
    ids.push(...res.devices.map((d) => d.deviceId));
  }

  const authorization = `Bearer ${secret}`;
  const base = { url: plane.httpUrl, authorization };
  const calls = {
    get: {
      ...base,
      path: '/cphone.api.v1.DeviceService/GetDevice',
      body: JSON.stringify({ deviceId: ids[0] }),
    },
    list: {
      ...base,
      path: '/cphone.api.v1.DeviceService/ListDevices',
      body: JSON.stringify({ pageSize: 50 }),
    },
  } satisfies Record<string, Call>;
  const bodies: Record<string, string> = {};
  for (const call of Object.values(calls)) {
    const res = await once(call);
    if (res.status !== 200) throw new Error(`${call.path} answered ${res.status}: ${res.body}`);
    bodies[call.path] = res.body;
  }
  const listed =
    (JSON.parse(bodies[calls.list.path] ?? '{}') as { devices?: unknown[] }).devices?.length ?? 0;

  await client.ready();
  await bare.ready();
  const { url: bareUrl } = await bare.ask<Extract<BareReply, { op: 'serving' }>>({ op: 'serve', bodies });

  interface Run {
    closed: Record<number, Figures>;
    max: number;
    open: Record<string, Figures>;
  }
  const ask = (r: ClientRequest) => client.ask<Extract<ClientReply, { op: 'figures' }>>(r);
  async function measure(call: Call): Promise<Run> {
    await ask({ op: 'closed', call, connections: 10, seconds: 1 });
    const closed: Record<number, Figures> = {};
    for (const connections of CONNECTIONS) {
      closed[connections] = await ask({ op: 'closed', call, connections, seconds: SECONDS });
    }
    const max = Math.max(...Object.values(closed).map((f) => f.rps));
    const open: Record<string, Figures> = {};
    for (const load of LOADS) {
      const rate = Math.round(max * load);
      open[load] = await ask({ op: 'open', call, rate, seconds: SECONDS, connections: OPEN_CONNECTIONS });
    }
    return { closed, max, open };
  }

  const runs: Record<string, Run> = {};
  for (const [name, call] of Object.entries(calls)) {
    runs[name] = await measure(call);
    runs[`bare_${name}`] = await measure({ ...call, url: bareUrl });
  }

  const ms = (n: number) => n.toFixed(2).padStart(7);
  console.log(
    `api bench: PostgreSQL, ${ids.length} devices, Connect JSON over HTTP/1.1 keep-alive, client in its own process, ${SECONDS} s per figure`,
  );
  console.log(
    `  GetDevice response ${bodies[calls.get.path]?.length} B; ListDevices ${listed} devices, ${bodies[calls.list.path]?.length} B`,
  );
  console.log('  server         mode                 req/s    p50 ms   p99 ms  errors  client cores');
  for (const [name, run] of Object.entries(runs)) {
    const row = (mode: string, f: Figures) =>
      console.log(
        `  ${name.padEnd(13)}  ${mode.padEnd(18)} ${f.rps.toFixed(0).padStart(7)}  ${ms(f.p50Ms)}  ${ms(f.p99Ms)}  ${String(f.errors).padStart(6)}  ${f.clientCores.toFixed(2).padStart(12)}`,
      );
    for (const [c, f] of Object.entries(run.closed)) row(`closed ${c} conns`, f);
    for (const [load, f] of Object.entries(run.open)) row(`open ${Number(load) * 100}% of max`, f);
  }
  const fig = (name: string) => runs[name] ?? { closed: {}, max: 0, open: {} };
  const round = (n: number | undefined, digits = 2) => Number((n ?? 0).toFixed(digits));
  const get = fig('get');
  const list = fig('list');
  const bareGet = fig('bare_get');
  const bareList = fig('bare_list');
  console.log(
    `  GetDevice / bare ${(get.max / bareGet.max).toFixed(3)}; ListDevices / bare ${(list.max / bareList.max).toFixed(3)}`,
  );
  // One client process tops out near one core: past that, a figure is the client's, not the server's.
  const clientBound = Object.entries(runs)
    .filter(([, run]) => Object.values(run.closed).some((f) => f.clientCores >= 0.9))
    .map(([name]) => name);
  if (clientBound.length > 0) {
    console.log(
      `  client-bound (client at ~1 core; the server could answer more): ${clientBound.join(', ')}`,
    );
  }
  console.log(
    JSON.stringify({
      bench: 'api',
      devices: ids.length,
      get_rps: Math.round(get.max),
      list_rps: Math.round(list.max),
      get_p99_ms_at_80pct: round(get.open[0.8]?.p99Ms),
      list_p99_ms_at_80pct: round(list.open[0.8]?.p99Ms),
      ratio_to_bare: round(get.max / bareGet.max, 3),
      get_p50_ms_at_80pct: round(get.open[0.8]?.p50Ms),
      list_p50_ms_at_80pct: round(list.open[0.8]?.p50Ms),
      get_p50_ms_at_50pct: round(get.open[0.5]?.p50Ms),
      get_p99_ms_at_50pct: round(get.open[0.5]?.p99Ms),
      list_p50_ms_at_50pct: round(list.open[0.5]?.p50Ms),
      list_p99_ms_at_50pct: round(list.open[0.5]?.p99Ms),
      bare_get_rps: Math.round(bareGet.max),
      bare_list_rps: Math.round(bareList.max),
      list_ratio_to_bare: round(list.max / bareList.max, 3),
      client_bound: clientBound,
      bare_get_p99_ms_at_80pct: round(bareGet.open[0.8]?.p99Ms),
      bare_list_p99_ms_at_80pct: round(bareList.open[0.8]?.p99Ms),
    }),
  );
} finally {
  await client.stop();
  await bare.stop();
  await plane.close();
  await rm(dataDir, { recursive: true, force: true });
  await database.close();
}
