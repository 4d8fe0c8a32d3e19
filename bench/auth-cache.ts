// What the authentication cache saves per API call: GetDevice through the public API, 2,000 calls
// one after another, on a control plane with the cache on (CPHONE_AUTH_CACHE_TTL_MS 5000) and on
// one with it off (0), each on a scratch database of its own. Client and server share this process, so the CPU
// figure is both sides' time per call. PostgreSQL by default (DATABASE_URL, else the local server's
// scratch database); `--pglite 1` runs on PGlite in process. Prints figures, never asserts a time.
import { createClient } from '@connectrpc/connect';
import type { ControlPlane } from '@cphone/control-plane';
import {
  bearerTransport,
  insertTestDevice,
  startTestControlPlane,
  type TestControlPlane,
} from '@cphone/control-plane/testing';
import { ApiKeyService, DeviceService, Role, TenantKind, TenantService } from '@cphone/proto';
import { arg } from './_args.js';

const CALLS = arg('calls', 2000);
const ROUNDS = arg('rounds', 2);
const pglite = arg('pglite', 0) === 1;
// Each plane gets a scratch database of its own: PostgreSQL's, or a PGlite in its data dir.
if (pglite) delete process.env.DATABASE_URL;
else process.env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
const started: TestControlPlane[] = [];

/** A customer with one device and a tenant_user key for it, made through the plane's API. */
async function customer(plane: ControlPlane): Promise<{ secret: string; deviceId: string }> {
  const admin = bearerTransport(plane.httpUrl, plane.bootstrapToken ?? '');
  const made = await createClient(TenantService, admin).createTenant({
    kind: TenantKind.CUSTOMER,
    displayName: 'bench',
  });
  const tenantId = made.tenant?.tenantId ?? '';
  const { deviceId } = await insertTestDevice(plane.deps.db, { hostId: null, tenantId });
  const { secret } = await createClient(ApiKeyService, admin).createApiKey({
    tenantId,
    displayName: 'bench',
    role: Role.TENANT_USER,
  });
  return { secret, deviceId };
}

try {
  for (const authCacheTtlMs of [5000, 0]) started.push(await startTestControlPlane({ authCacheTtlMs }));
  const [cached, uncached] = started.map((t) => t.plane);
  if (!cached || !uncached) throw new Error('planes did not start');

  async function measure(plane: ControlPlane) {
    const { secret, deviceId } = await customer(plane);
    const devices = createClient(DeviceService, bearerTransport(plane.httpUrl, secret));
    for (let i = 0; i < 200; i++) await devices.getDevice({ deviceId });
    const times: number[] = [];
    const cpu = process.cpuUsage();
    const began = performance.now();
    for (let i = 0; i < CALLS; i++) {
      const t = performance.now();
      await devices.getDevice({ deviceId });
      times.push(performance.now() - t);
    }
    const wallMs = performance.now() - began;
    const used = process.cpuUsage(cpu);
    times.sort((x, y) => x - y);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
    return {
      meanMs: wallMs / CALLS,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      cpuMsPerCall: (used.user + used.system) / 1000 / CALLS,
      callsPerSecond: CALLS / (wallMs / 1000),
    };
  }

  const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
  for (let round = 1; round <= ROUNDS; round++) {
    // Alternating, so warm-up and machine noise fall on both.
    results.off = await measure(uncached);
    results.on = await measure(cached);
  }
  const fmt = (n: number) => n.toFixed(3);
  console.log(
    `GetDevice x ${CALLS}, sequential, ${pglite ? 'PGlite' : 'PostgreSQL'} (last of ${ROUNDS} rounds)`,
  );
  for (const [name, r] of Object.entries(results)) {
    console.log(
      `cache ${name.padEnd(3)}  mean ${fmt(r.meanMs)} ms  p50 ${fmt(r.p50Ms)} ms  p99 ${fmt(r.p99Ms)} ms  cpu ${fmt(r.cpuMsPerCall)} ms/call  ${r.callsPerSecond.toFixed(0)} calls/s`,
    );
  }
  const on = results.on;
  const off = results.off;
  const ratio = on && off ? { latency: off.meanMs / on.meanMs, cpu: off.cpuMsPerCall / on.cpuMsPerCall } : {};
  console.log(
    JSON.stringify({
      bench: 'auth-cache',
      db: pglite ? 'pglite' : 'postgres',
      calls: CALLS,
      ...results,
      offOverOn: ratio,
    }),
  );
} finally {
  for (const t of started) await t.close();
}
