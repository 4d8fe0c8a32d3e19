// Frozen in time: never edit a migration that has shipped; add a new one.
// A MIGRATE drain's per-device record: the desired power each device had before the drain stopped
// it (restored on its new host, or on the old one if the drain is cancelled), where it went, and why
// it could not be placed yet. Rows of a host's previous drain are replaced when a new one starts.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('drain_device')
    .addColumn('host_id', 'text', (c) => c.notNull().references('host.id').onDelete('cascade'))
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('desired_power', 'text', (c) => c.notNull())
    .addColumn('target_host_id', 'text')
    .addColumn('failure', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('migrate_time', 'timestamptz')
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('drain_device_pk', ['host_id', 'device_id'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('drain_device').ifExists().execute();
}
