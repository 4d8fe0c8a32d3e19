// Frozen in time: never edit a migration that has shipped; add a new one.
// Fields the public API shows that the first schema lacked: an image's SDK level, labels and
// lifecycle state; the host a device event happened on; when a device's state last changed and when
// it last entered RUNNING.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('image')
    .addColumn('sdk_level', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('image')
    .addColumn('labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema
    .alterTable('image')
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('active'))
    .execute();
  await db.schema.alterTable('device_event').addColumn('host_id', 'text').execute();
  await db.schema
    .alterTable('device')
    .addColumn('state_change_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.alterTable('device').addColumn('start_time', 'timestamptz').execute();
  // ListDevices filters by image; DeleteImage asks whether any device still uses one.
  await db.schema.createIndex('device_image_idx').on('device').columns(['image_id', 'state']).execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('device_image_idx').ifExists().execute();
  for (const column of ['start_time', 'state_change_time'])
    await db.schema.alterTable('device').dropColumn(column).execute();
  await db.schema.alterTable('device_event').dropColumn('host_id').execute();
  for (const column of ['state', 'labels', 'sdk_level'])
    await db.schema.alterTable('image').dropColumn(column).execute();
}
