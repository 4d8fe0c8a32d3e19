import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sql } from 'kysely';
import pino from 'pino';
import { loadConfig } from '../config.js';
import { startControlPlane } from '../server.js';
import { migrateToLatest, schemaStatus } from './migrate.js';
import type { Database } from './schema.js';
import { createTestDatabase } from './test-database.js';

test('migrations apply once, in order, and a second run changes nothing', async () => {
  const t = await createTestDatabase();
  try {
    const first = await migrateToLatest(t.db);
    assert.ok(first.length >= 1);
    assert.deepEqual([...first].sort(), first, 'applied in timestamp order');
    assert.deepEqual(await migrateToLatest(t.db), []);
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = 'public' order by table_name`.execute(
      t.db,
    );
    const names = tables.rows.map((r) => r.table_name);
    for (const table of [
      'device',
      'device_event',
      'host',
      'host_credential',
      'api_key',
      'audit_log',
      'usage_sample',
    ]) {
      assert.ok(names.includes(table), `table ${table} exists`);
    }
  } finally {
    await t.close();
  }
});

test('with CPHONE_MIGRATE=false a replica refuses an unmigrated schema and accepts a newer one', async () => {
  const t = await createTestDatabase<Database>();
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-schema-'));
  const config = loadConfig({
    CPHONE_MIGRATE: 'false',
    CPHONE_DATA_DIR: dataDir,
    CPHONE_HTTP_PORT: '0',
    CPHONE_GRPC_PORT: '0',
  });
  try {
    const fresh = await schemaStatus(t.db);
    assert.equal(fresh.unknown.length, 0);
    assert.ok(fresh.pending.includes('2026-11-22T0000-initial'));
    await assert.rejects(
      startControlPlane(config, { database: t, logger: pino({ level: 'silent' }) }),
      /CPHONE_MIGRATE=false but the database lacks \d+ migration\(s\) of this release \(2026-11-22T0000-initial, .*run `npm run migrate`/,
    );
    await migrateToLatest(t.db);
    assert.deepEqual(await schemaStatus(t.db), { pending: [], unknown: [] });
    // A later release's migration (as its Job leaves it before this replica restarts).
    await sql`insert into kysely_migration (name, timestamp) values ('2099-01-01T0000-later', now()::text)`.execute(
      t.db,
    );
    assert.deepEqual(await schemaStatus(t.db), { pending: [], unknown: ['2099-01-01T0000-later'] });
    const plane = await startControlPlane(config, { database: t, logger: pino({ level: 'silent' }) });
    assert.equal((await fetch(`${plane.httpUrl}/readyz`)).status, 200);
    await plane.close();
  } finally {
    await t.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
