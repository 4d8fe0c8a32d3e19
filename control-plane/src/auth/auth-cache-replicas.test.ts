// Cached authentication on two replicas of one database, through the public API: every change that
// alters a key's answer, made through one replica, holds on the other's very next call. The TTL is a
// minute, so nothing here passes by the cache going stale.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { ApiKeyService, Role, TenantKind, TenantService, TenantState } from '@cphone/proto';
import pino from 'pino';
import { bearerTransport } from '../api/bearer-transport.js';
import { loadConfig } from '../config.js';
import { type ControlPlane, startControlPlane } from '../server.js';
import { sharedTestDatabase } from '../test-control-plane.js';

let dataDir: string;
let closeDatabase: () => Promise<void>;
let a: ControlPlane;
let b: ControlPlane;
let uncached: ControlPlane;
let admin: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cphone-auth-cache-'));
  const { databaseUrl, database, close } = await sharedTestDatabase();
  closeDatabase = close;
  const start = (authCacheTtlMs: number) =>
    startControlPlane(loadConfig({}, { dataDir, databaseUrl, httpPort: 0, grpcPort: 0, authCacheTtlMs }), {
      logger: pino({ level: 'silent' }),
      ...(database ? { database } : {}),
    });
  a = await start(60_000);
  b = await start(60_000);
  uncached = await start(0);
  admin = a.bootstrapToken ?? '';
  assert.ok(admin);
});

after(async () => {
  for (const plane of [a, b, uncached]) await plane?.close();
  await closeDatabase?.();
  await rm(dataDir, { recursive: true, force: true });
});

const keys = (plane: ControlPlane, token: string) =>
  createClient(ApiKeyService, bearerTransport(plane.httpUrl, token));
const tenants = (plane: ControlPlane, token: string) =>
  createClient(TenantService, bearerTransport(plane.httpUrl, token));
const unauthenticated = (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated;

async function hits(plane: ControlPlane): Promise<number> {
  const { values } = await plane.deps.metrics.authCache.get();
  return values.find((v) => v.labels.outcome === 'hit')?.value ?? 0;
}

async function newTenant(kind: TenantKind, parentTenantId = '', token = admin): Promise<string> {
  const made = await tenants(a, token).createTenant({ kind, displayName: 'cached', parentTenantId });
  return made.tenant?.tenantId ?? '';
}

async function newKey(tenantId: string, expireTime?: Date): Promise<string> {
  const made = await keys(a, admin).createApiKey({
    tenantId,
    displayName: 'cached',
    role: Role.TENANT_ADMIN,
    ...(expireTime ? { expireTime: timestampFromDate(expireTime) } : {}),
  });
  return made.secret;
}

/** Calls with the key on both replicas until each answers from its cache. */
async function warm(token: string): Promise<void> {
  for (const plane of [a, b]) {
    await tenants(plane, token).getTenant({});
    const before = await hits(plane);
    await tenants(plane, token).getTenant({});
    assert.equal(await hits(plane), before + 1, 'the second call is answered from the cache');
  }
}

test('a cached key is refused on every replica right after RevokeApiKey', async () => {
  const token = await newKey(await newTenant(TenantKind.CUSTOMER));
  await warm(token);
  await keys(a, admin).revokeApiKey({ apiKeyId: token.split('.')[0] ?? '' });
  await assert.rejects(tenants(b, token).getTenant({}), unauthenticated);
  await assert.rejects(tenants(a, token).getTenant({}), unauthenticated);
});

test('suspending a tenant through UpdateTenant refuses its keys and its descendants’ at once', async () => {
  const reseller = await newTenant(TenantKind.RESELLER);
  const customer = await newTenant(TenantKind.CUSTOMER, reseller);
  const token = await newKey(customer);
  await warm(token);
  const setState = (state: TenantState) =>
    tenants(a, admin).updateTenant({
      tenant: { tenantId: reseller, state },
      updateMask: { paths: ['state'] },
    });
  await setState(TenantState.SUSPENDED);
  await assert.rejects(tenants(b, token).getTenant({}), unauthenticated);
  await assert.rejects(tenants(a, token).getTenant({}), unauthenticated);
  await setState(TenantState.ACTIVE);
  assert.equal((await tenants(b, token).getTenant({})).tenant?.tenantId, customer);
});

test('a new child tenant is visible at once to a cached key of its parent', async () => {
  const reseller = await newTenant(TenantKind.RESELLER);
  const token = await newKey(reseller);
  await warm(token);
  const child = await newTenant(TenantKind.CUSTOMER, reseller, token);
  assert.equal((await tenants(b, token).getTenant({ tenantId: child })).tenant?.tenantId, child);
  const listed = await tenants(b, token).listTenants({});
  assert.deepEqual(
    listed.tenants.map((t) => t.tenantId),
    [child],
  );
});

test('a deleted tenant’s cached keys are refused at once', async () => {
  const customer = await newTenant(TenantKind.CUSTOMER);
  const token = await newKey(customer);
  await warm(token);
  await tenants(a, admin).deleteTenant({ tenantId: customer });
  await assert.rejects(tenants(b, token).getTenant({}), unauthenticated);
});

test('a cached key is refused once its expiry time passes', async () => {
  const expires = new Date(Date.now() + 1500);
  const token = await newKey(await newTenant(TenantKind.CUSTOMER), expires);
  await warm(token);
  await new Promise((r) => setTimeout(r, Math.max(0, expires.getTime() - Date.now()) + 50));
  await assert.rejects(tenants(b, token).getTenant({}), unauthenticated);
  await assert.rejects(tenants(a, token).getTenant({}), unauthenticated);
});

test('a TTL of 0 reads the database on every call', async () => {
  const token = await newKey(await newTenant(TenantKind.CUSTOMER));
  await tenants(uncached, token).getTenant({});
  await tenants(uncached, token).getTenant({});
  assert.equal((await uncached.deps.metrics.authCache.get()).values.length, 0);
  // A revocation written past every service (no invalidation) holds on the next call all the same.
  await uncached.deps.db
    .updateTable('api_key')
    .set({ revoke_time: new Date() })
    .where('id', '=', token.split('.')[0] ?? '')
    .execute();
  await assert.rejects(tenants(uncached, token).getTenant({}), unauthenticated);
});
