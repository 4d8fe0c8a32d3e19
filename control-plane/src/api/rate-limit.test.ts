// Rate limits through the public API, on whole control planes: one replica's refusals and headers,
// two replicas on one database admitting together no more than one bucket would (plus 5 %), a
// tenant's override honoured by both, and leases (the limiter's only queries) far fewer than calls.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createClient } from '@connectrpc/connect';
import { ApiKeyService, Role, TenantKind, TenantService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { type ControlPlaneConfig, loadConfig } from '../config.js';
import { type ControlPlane, startControlPlane } from '../server.js';
import { sharedTestDatabase } from '../test-control-plane.js';
import { bearerTransport } from './bearer-transport.js';
import { leaseSize } from './rate-limit.js';

let dataDir: string;
let closeDatabase: () => Promise<void>;
let a: ControlPlane;
let b: ControlPlane;
let admin: string;

// Keys: 20 calls per second, a burst of 400 (leases of 5). Tenants: far above, so keys bind.
const KEY = { rps: 20, burst: 400 };
const limits: Partial<ControlPlaneConfig> = {
  rateLimitKeyRps: KEY.rps,
  rateLimitKeyBurst: KEY.burst,
  rateLimitTenantRps: 1_000_000,
  rateLimitTenantBurst: 1_000_000,
};

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cphone-rate-limit-'));
  const { databaseUrl, database, close } = await sharedTestDatabase();
  closeDatabase = close;
  const start = () =>
    startControlPlane(loadConfig({}, { dataDir, databaseUrl, httpPort: 0, grpcPort: 0, ...limits }), {
      logger: pino({ level: 'silent' }),
      ...(database ? { database } : {}),
    });
  a = await start();
  b = await start();
  admin = a.bootstrapToken ?? '';
  assert.ok(admin);
});

after(async () => {
  for (const plane of [a, b]) await plane?.close();
  await closeDatabase?.();
  await rm(dataDir, { recursive: true, force: true });
});

const tenants = (plane: ControlPlane, token: string) =>
  createClient(TenantService, bearerTransport(plane.httpUrl, token));

/** A fresh customer tenant and a TENANT_ADMIN key of it (made on replica a, with the admin key). */
async function newKey(): Promise<{ tenantId: string; token: string }> {
  const made = await tenants(a, admin).createTenant({ kind: TenantKind.CUSTOMER, displayName: 'limited' });
  const tenantId = made.tenant?.tenantId ?? '';
  const key = await createClient(ApiKeyService, bearerTransport(a.httpUrl, admin)).createApiKey({
    tenantId,
    displayName: 'limited',
    role: Role.TENANT_ADMIN,
  });
  return { tenantId, token: key.secret };
}

/** One GetTenant over Connect's JSON protocol, to read the answer's headers. */
async function call(plane: ControlPlane, token: string) {
  const response = await fetch(`${plane.httpUrl}/cphone.api.v1.TenantService/GetTenant`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: '{}',
  });
  const body = (await response.json()) as { code?: string; message?: string };
  return { status: response.status, headers: response.headers, body };
}

async function leases(plane: ControlPlane): Promise<number> {
  return (await plane.deps.metrics.rateLimitLeases.get()).values[0]?.value ?? 0;
}

async function refusals(plane: ControlPlane, scope: string): Promise<number> {
  const { values } = await plane.deps.metrics.rateLimitRefusals.get();
  return values.find((v) => v.labels.scope === scope)?.value ?? 0;
}

test('one replica: the burst is admitted, then RESOURCE_EXHAUSTED naming the key and the limit, with headers on both', async () => {
  const { tenantId, token } = await newKey();
  await tenants(a, admin).setQuota({
    quota: { tenantId, keyRateLimitRps: 1, keyRateLimitBurst: 5 },
    updateMask: { paths: ['key_rate_limit_rps', 'key_rate_limit_burst'] },
  });
  const remaining: number[] = [];
  for (let k = 0; k < 5; k++) {
    const answer = await call(a, token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.headers.get('ratelimit-limit'), '5');
    assert.ok(Number(answer.headers.get('ratelimit-reset')) >= 1);
    assert.equal(answer.headers.get('ratelimit-policy'), '5;w=5');
    remaining.push(Number(answer.headers.get('ratelimit-remaining')));
  }
  assert.deepEqual(remaining, [4, 3, 2, 1, 0]);
  const before = await refusals(a, 'key');
  const refused = await call(a, token);
  assert.equal(refused.status, 429);
  assert.equal(refused.body.code, 'resource_exhausted');
  const keyId = token.split('.')[0] ?? '';
  assert.match(refused.body.message ?? '', new RegExp(`API key "${keyId}".*1 calls per second, burst 5`));
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  assert.equal(refused.headers.get('ratelimit-limit'), '5');
  assert.equal(refused.headers.get('ratelimit-remaining'), '0');
  assert.ok(Number(refused.headers.get('ratelimit-reset')) >= 1);
  assert.equal(await refusals(a, 'key'), before + 1);
});

test('no database round trip on the hot path: leases are far fewer than calls', async () => {
  const { token } = await newKey();
  await call(a, token); // the cold start: the first lease
  const before = await leases(a);
  const calls = 200;
  for (let k = 0; k < calls; k++) assert.equal((await call(a, token)).status, 200);
  const taken = (await leases(a)) - before;
  // Tokens come in leases of burst / 80 = 5 (the key bucket) and 12,500 (the tenant's).
  assert.equal(leaseSize(KEY), 5);
  assert.ok(taken <= calls / leaseSize(KEY) + 2, `${taken} leases for ${calls} calls`);
});

test('two replicas on one database admit together at most the limit plus 5 %', async () => {
  // Small enough for a loaded machine to outrun: the callers stop once well past the limit.
  const limit = { rps: 2, burst: 160 };
  const { tenantId, token } = await newKey();
  await tenants(a, admin).setQuota({
    quota: { tenantId, keyRateLimitRps: limit.rps, keyRateLimitBurst: limit.burst },
    updateMask: { paths: ['key_rate_limit_rps', 'key_rate_limit_burst'] },
  });
  for (const plane of [a, b]) {
    await waitFor(
      'both replicas hold the override',
      () => plane.deps.rateLimiter?.limitOf('key', tenantId),
      (l) => l?.burst === limit.burst,
    );
  }
  let admitted = 0;
  let refused = 0;
  const perReplica = new Map<ControlPlane, number>();
  const started = performance.now();
  const elapsedMs = () => performance.now() - started;
  const done = () => (elapsedMs() >= 2000 && refused >= 50) || elapsedMs() >= 90_000;
  const worker = async (plane: ControlPlane) => {
    while (!done()) {
      const answer = await call(plane, token);
      if (answer.status === 200) {
        admitted++;
        perReplica.set(plane, (perReplica.get(plane) ?? 0) + 1);
      } else {
        assert.equal(answer.body.code, 'resource_exhausted');
        refused++;
      }
    }
  };
  await Promise.all([a, b].flatMap((plane) => Array.from({ length: 4 }, () => worker(plane))));
  const elapsedS = elapsedMs() / 1000;
  // What one exact bucket admits over the whole run: the burst and the refill.
  const exact = limit.burst + limit.rps * elapsedS;
  const report = `${admitted} admitted, ${refused} refused in ${elapsedS.toFixed(1)} s; one bucket admits ${exact.toFixed(0)}`;
  assert.ok(refused >= 50, `the callers went past the limit: ${report}`);
  assert.ok(admitted <= exact * 1.05, report);
  assert.ok(admitted >= limit.burst, `the burst is usable: ${report}`);
  assert.ok((perReplica.get(a) ?? 0) > 0 && (perReplica.get(b) ?? 0) > 0, 'both replicas admitted calls');
});

test("a tenant's override set on one replica is honoured by both, and read back with its quota", async () => {
  const { tenantId, token } = await newKey();
  await tenants(a, admin).setQuota({
    quota: { tenantId, keyRateLimitRps: 1, keyRateLimitBurst: 3, rateLimitRps: 500 },
    updateMask: { paths: ['key_rate_limit_rps', 'key_rate_limit_burst', 'rate_limit_rps'] },
  });
  const quota = (await tenants(b, admin).getQuota({ tenantId })).quota;
  assert.equal(quota?.keyRateLimitRps, 1);
  assert.equal(quota?.keyRateLimitBurst, 3);
  assert.equal(quota?.rateLimitRps, 500);
  assert.equal(quota?.rateLimitBurst, undefined, 'unset keeps the default');
  // SetQuota answered once replica a heard its own notice; b reloads as it hears it.
  await waitFor(
    'replica b holds the override',
    () => b.deps.rateLimiter?.limitOf('key', tenantId),
    (limit) => limit?.rps === 1 && limit.burst === 3,
  );
  const statuses: number[] = [];
  for (let k = 0; k < 4; k++) statuses.push((await call(b, token)).status);
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  // Replica a shares the same bucket: it is dry there too.
  assert.equal((await call(a, token)).status, 429);

  await assert.rejects(
    tenants(a, admin).setQuota({
      quota: { tenantId, keyRateLimitBurst: 0 },
      updateMask: { paths: ['key_rate_limit_burst'] },
    }),
    /quota.key_rate_limit_burst/,
  );
});
