// Frozen in time: never edit a migration that has shipped; add a new one.
// Stream sessions: each grant to watch a device through its host's sfu, what became of it and how
// it went (viewer-seconds for metering, quality figures for ops). Hosts record the public endpoint
// their agent serves streams on; tenants get a state (active or suspended).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('stream_session')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('host_id', 'text', (c) => c.notNull())
    .addColumn('rights', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('issued'))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expire_time', 'timestamptz', (c) => c.notNull())
    .addColumn('start_time', 'timestamptz')
    .addColumn('end_time', 'timestamptz')
    .addColumn('end_reason', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('viewer_seconds', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('stats', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('stream_session_device_idx')
    .on('stream_session')
    .columns(['device_id', 'id'])
    .execute();
  await db.schema
    .createIndex('stream_session_open_idx')
    .on('stream_session')
    .columns(['tenant_id', 'state'])
    .where(sql.ref('state'), '!=', 'ended')
    .execute();
  await db.schema
    .alterTable('host')
    .addColumn('stream_endpoint', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema
    .alterTable('tenant')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('active'))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('tenant').dropColumn('state').execute();
  await db.schema.alterTable('host').dropColumn('stream_endpoint').execute();
  await db.schema.dropTable('stream_session').ifExists().execute();
}
