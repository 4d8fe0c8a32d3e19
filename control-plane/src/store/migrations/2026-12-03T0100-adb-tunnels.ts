// Frozen in time: never edit a migration that has shipped; add a new one.
// ADB tunnels: each grant to carry ADB to a device through its host agent. The connections made
// with a grant are in the audit trail (AdbTunnel/Connected, AdbTunnel/Disconnected); the row is what
// a host's report is checked against (a host speaks for the tunnels issued for it only).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('adb_tunnel')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('host_id', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expire_time', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('adb_tunnel_device_idx')
    .on('adb_tunnel')
    .columns(['device_id', 'id'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('adb_tunnel').ifExists().execute();
}
