// Frozen in time: never edit a migration that has shipped; add a new one.
// The current or last drain of a host (drain_mode stays the mode of a drain in progress, null
// otherwise, which is what the scheduler reads), tenant labels, the quota period and the APK facts of artifacts.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('host')
    .addColumn('drain_state', 'text', (c) =>
      c.check(sql`drain_state in ('in_progress', 'completed', 'failed', 'cancelled')`),
    )
    .addColumn('drain_last_mode', 'text', (c) => c.check(sql`drain_last_mode in ('stop', 'migrate')`))
    .addColumn('drain_reason', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('drain_devices_total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('drain_deadline', 'timestamptz')
    .addColumn('drain_end_time', 'timestamptz')
    .execute();
  await db.schema
    .alterTable('tenant')
    .addColumn('labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema
    .alterTable('quota')
    .addColumn('period', 'text', (c) => c.notNull().defaultTo('month').check(sql`period in ('day', 'month')`))
    .execute();
  await db.schema
    .alterTable('artifact')
    .addColumn('min_sdk', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('target_sdk', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // Agents fetch blobs by hash alone; listing a tenant's artifacts pages on (tenant, sha256) already.
  await db.schema.createIndex('artifact_sha256_idx').on('artifact').column('sha256').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('artifact_sha256_idx').ifExists().execute();
  await db.schema.alterTable('artifact').dropColumn('min_sdk').dropColumn('target_sdk').execute();
  await db.schema.alterTable('quota').dropColumn('period').execute();
  await db.schema.alterTable('tenant').dropColumn('labels').execute();
  await db.schema
    .alterTable('host')
    .dropColumn('drain_state')
    .dropColumn('drain_last_mode')
    .dropColumn('drain_reason')
    .dropColumn('drain_devices_total')
    .dropColumn('drain_deadline')
    .dropColumn('drain_end_time')
    .execute();
}
