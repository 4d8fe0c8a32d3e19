// Frozen in time: never edit a migration that has shipped; add a new one.
// Webhooks: subscriptions, the outbox of events (written in the transaction of the change they
// report), one delivery per event and webhook (retried until it succeeds or its window closes),
// and the log of every attempt. No foreign keys to `webhook`: an event's transaction must never
// wait on, or fail for, a webhook being deleted at the same time (a delivery of a deleted webhook
// is dropped by the worker).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('webhook')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('event_types', 'jsonb', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('enabled'))
    .addColumn('disabled_reason', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('previous_secret', 'text')
    .addColumn('previous_secret_expire_time', 'timestamptz')
    .addColumn('failing_since', 'timestamptz')
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('update_time', 'timestamptz', (c) => c.notNull())
    .addColumn('delete_time', 'timestamptz')
    .execute();
  await db.schema.createIndex('webhook_tenant_idx').on('webhook').columns(['tenant_id', 'id']).execute();

  await db.schema
    .createTable('webhook_event')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    // The body as delivered, byte for byte in every attempt (text, not jsonb: jsonb reorders keys).
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_event_time_idx').on('webhook_event').column('create_time').execute();

  await db.schema
    .createTable('webhook_delivery')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('webhook_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('pending'))
    .addColumn('manual', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // Due time while pending; a claim moves it past the attempt's lease, so a crashed replica's
    // delivery comes due again by itself.
    .addColumn('next_attempt_time', 'timestamptz', (c) => c.notNull())
    .addColumn('lease_token', 'text')
    .addColumn('create_time', 'timestamptz', (c) => c.notNull())
    .addColumn('update_time', 'timestamptz', (c) => c.notNull())
    .execute();
  await sql`create index webhook_delivery_due_idx on webhook_delivery (next_attempt_time) where state = 'pending'`.execute(
    db,
  );
  await db.schema
    .createIndex('webhook_delivery_webhook_idx')
    .on('webhook_delivery')
    .columns(['webhook_id', 'event_id'])
    .execute();

  await db.schema
    .createTable('webhook_attempt')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('delivery_id', 'text', (c) => c.notNull())
    .addColumn('webhook_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('attempt_time', 'timestamptz', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('http_status', 'integer', (c) => c.notNull())
    .addColumn('error', 'text', (c) => c.notNull())
    .addColumn('response_excerpt', 'text', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('webhook_attempt_tenant_idx')
    .on('webhook_attempt')
    .columns(['tenant_id', 'id'])
    .execute();
  await db.schema
    .createIndex('webhook_attempt_webhook_idx')
    .on('webhook_attempt')
    .columns(['webhook_id', 'id'])
    .execute();
  await db.schema
    .createIndex('webhook_attempt_time_idx')
    .on('webhook_attempt')
    .column('attempt_time')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['webhook_attempt', 'webhook_delivery', 'webhook_event', 'webhook'])
    await db.schema.dropTable(table).ifExists().execute();
}
