import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { migrateToLatest } from './migrate.js';
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
