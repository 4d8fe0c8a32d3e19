// Frozen in time: never edit a migration that has shipped; add a new one.
// Device minutes enforced: what a tenant does when its max_device_minutes is used up, and the
// enforcer's last reading of each limited tenant's use per period (which thresholds it has
// announced, so each webhook event goes out once per period).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('quota')
    .addColumn('device_minutes_action', 'text', (c) => c.notNull().defaultTo('refuse_starts'))
    .execute();
  await db.schema
    .createTable('quota_minutes')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('period_start', 'timestamptz', (c) => c.notNull())
    .addColumn('used_minutes', 'bigint', (c) => c.notNull())
    .addColumn('limit_minutes', 'bigint', (c) => c.notNull())
    .addColumn('announced_percent', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('quota_minutes_pk', ['tenant_id', 'period_start'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('quota_minutes').ifExists().execute();
  await db.schema.alterTable('quota').dropColumn('device_minutes_action').execute();
}
