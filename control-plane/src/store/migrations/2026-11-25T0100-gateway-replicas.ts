// Frozen in time: never edit a migration that has shipped; add a new one.
// Several control-plane replicas: which replica holds each host's live agent stream (commands for
// the host are routed there), and the relay table for messages between replicas too large for a
// NOTIFY payload (command results carry screenshots and shell output).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('host').addColumn('gateway_replica', 'text').execute();
  await db.schema
    .createTable('gateway_relay')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('gateway_relay_create_time')
    .on('gateway_relay')
    .column('create_time')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('gateway_relay').ifExists().execute();
  await db.schema.alterTable('host').dropColumn('gateway_replica').execute();
}
