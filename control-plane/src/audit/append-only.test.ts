// The audit log is append-only in the database itself, on every kind of database the control plane
// runs on; the rows written before it became so were rewritten once, to the snake_case outcomes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { migrateTo, migrateToLatest } from '../store/migrate.js';
import type { Database } from '../store/schema.js';
import { availableDatabaseKinds, createTestDatabase } from '../store/test-database.js';

for (const kind of availableDatabaseKinds()) {
  test(`${kind}: UPDATE, DELETE and TRUNCATE of audit_log are refused; old rows were migrated`, async () => {
    const store = await createTestDatabase<Database>({ kind });
    try {
      // The rows of the code before: CamelCase outcomes, the actor's tenant only, ids in `resource`.
      await migrateTo(store.db, '2026-12-03T0100-adb-tunnels');
      await sql`
        insert into audit_log (tenant_id, actor, role, method, resource, outcome) values
          ('t_a', 'key_1', 'tenant_admin', 'DeviceService/StopDevice', 'deviceId=dev_1', 'NotFound'),
          ('t_a', 'usr_1', 'tenant_admin', 'TenantService/SetQuota', '', 'ok'),
          ('t_a', 'key_1', 'tenant_admin', 'HostService/CordonHost', 'hostId=h1', 'FailedPrecondition')`.execute(
        store.db,
      );
      await migrateToLatest(store.db);
      const rows = await store.db
        .selectFrom('audit_log')
        .select(['outcome', 'actor_tenant_id', 'actor_kind', 'resource_type', 'resource_id'])
        .orderBy('id')
        .execute();
      assert.deepEqual(rows, [
        {
          outcome: 'not_found',
          actor_tenant_id: 't_a',
          actor_kind: 'api_key',
          resource_type: 'device',
          resource_id: 'dev_1',
        },
        {
          outcome: 'ok',
          actor_tenant_id: 't_a',
          actor_kind: 'user',
          resource_type: 'tenant',
          resource_id: '',
        },
        {
          outcome: 'failed_precondition',
          actor_tenant_id: 't_a',
          actor_kind: 'api_key',
          resource_type: 'host',
          resource_id: 'h1',
        },
      ]);

      await assert.rejects(
        store.db.updateTable('audit_log').set({ outcome: 'ok' }).where('actor', '=', 'key_1').execute(),
        /append-only: UPDATE refused/,
      );
      await assert.rejects(
        store.db.deleteFrom('audit_log').where('actor', '=', 'key_1').execute(),
        /append-only: DELETE refused/,
      );
      await assert.rejects(sql`truncate audit_log`.execute(store.db), /append-only: TRUNCATE refused/);
      // Refused even when no row matches: the statement itself is refused.
      await assert.rejects(store.db.deleteFrom('audit_log').where('id', '<', 0).execute(), /append-only/);
      const count = await store.db
        .selectFrom('audit_log')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(Number(count.n), 3, 'every row is still there');
      // Appending still works.
      await store.db
        .insertInto('audit_log')
        .values({
          tenant_id: 't_a',
          actor: 'key_1',
          role: '',
          method: 'X/Y',
          resource: '',
          outcome: 'ok',
          detail: '{}',
        })
        .execute();
    } finally {
      await store.close();
    }
  });
}
