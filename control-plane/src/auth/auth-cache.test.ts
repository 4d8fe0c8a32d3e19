import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { AuthCache, type AuthChange, type CachedKey } from './auth-cache.js';

const logger = pino({ level: 'silent' });

function answer(keyId: string, tenantId = 'tnt_a', expireMs: number | null = null): CachedKey {
  return {
    principal: { actor: keyId, keyId, tenantId, role: 'tenant_admin', visibleTenants: [tenantId] },
    storedRole: 'tenant_admin',
    expireMs,
    lastUsedMs: null,
  };
}

function cache(
  ttlMs: number,
  extra: { maxEntries?: number; publish?: (c: AuthChange) => Promise<void> } = {},
) {
  const lookups: string[] = [];
  const c = new AuthCache({ ttlMs, logger, onLookup: (o) => lookups.push(o), ...extra });
  return { c, lookups };
}

test('keeps an answer for the TTL, under the secret hash and key id it was read with', () => {
  const { c, lookups } = cache(1000);
  assert.equal(c.get('h1', 'key_1', 0), undefined);
  c.set('h1', answer('key_1'), c.generation(), 0);
  assert.equal(c.get('h1', 'key_1', 999)?.principal.keyId, 'key_1');
  assert.equal(c.get('h1', 'key_other', 999), undefined, 'another key id with the same hash misses');
  assert.equal(c.get('h2', 'key_1', 999), undefined, 'another secret misses');
  assert.equal(c.get('h1', 'key_1', 1000), undefined, 'stale at the TTL');
  assert.deepEqual(lookups, ['miss', 'hit', 'miss', 'miss', 'miss']);
});

test('a key past its expiry time misses on the very next lookup, whatever the TTL', () => {
  const { c } = cache(60_000);
  c.set('h1', answer('key_1', 'tnt_a', 500), c.generation(), 0);
  assert.ok(c.get('h1', 'key_1', 499));
  assert.equal(c.get('h1', 'key_1', 500), undefined);
  assert.equal(c.size, 0);
});

test('a TTL of 0 keeps nothing and counts nothing', () => {
  const { c, lookups } = cache(0);
  c.set('h1', answer('key_1'), c.generation(), 0);
  assert.equal(c.get('h1', 'key_1', 0), undefined);
  assert.equal(c.size, 0);
  assert.deepEqual(lookups, []);
});

test('holds at most maxEntries, dropping the least recently used', () => {
  const { c } = cache(60_000, { maxEntries: 2 });
  c.set('h1', answer('key_1'), c.generation(), 0);
  c.set('h2', answer('key_2'), c.generation(), 0);
  assert.ok(c.get('h1', 'key_1', 1));
  c.set('h3', answer('key_3'), c.generation(), 1);
  assert.equal(c.size, 2);
  assert.ok(c.get('h1', 'key_1', 2));
  assert.equal(c.get('h2', 'key_2', 2), undefined);
  assert.ok(c.get('h3', 'key_3', 2));
});

test('a key change drops that key; a tenant change drops everything; both are told to the others', async () => {
  const told: AuthChange[] = [];
  const { c } = cache(60_000, { publish: async (change) => void told.push(change) });
  c.set('h1', answer('key_1'), c.generation(), 0);
  c.set('h2', answer('key_2'), c.generation(), 0);
  await c.changed({ kind: 'key', keyId: 'key_1' });
  assert.equal(c.get('h1', 'key_1', 1), undefined);
  assert.ok(c.get('h2', 'key_2', 1));
  await c.changed({ kind: 'tenants' });
  assert.equal(c.size, 0);
  assert.deepEqual(told, [{ kind: 'key', keyId: 'key_1' }, { kind: 'tenants' }]);
});

test('an answer read before an invalidation is not kept', () => {
  const { c } = cache(60_000);
  const before = c.generation();
  c.apply({ kind: 'key', keyId: 'key_1' });
  c.set('h1', answer('key_1'), before, 0);
  assert.equal(c.size, 0);
});

test('a failed NOTIFY still drops the answer here', async () => {
  const { c } = cache(60_000, { publish: () => Promise.reject(new Error('session gone')) });
  c.set('h1', answer('key_1'), c.generation(), 0);
  await c.changed({ kind: 'key', keyId: 'key_1' });
  assert.equal(c.size, 0);
});
