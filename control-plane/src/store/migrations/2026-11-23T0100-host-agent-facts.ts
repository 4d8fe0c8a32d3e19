// Frozen in time: never edit a migration that has shipped; add a new one.
// What the agent says about itself at each Hello, kept apart from the operator's enrollment data:
// `labels` stay the enrolled (authoritative) ones, the agent's own labels are recorded beside them.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('host')
    .addColumn('agent_labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema
    .alterTable('host')
    .addColumn('kernel_version', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema
    .alterTable('host')
    .addColumn('agent_instance_id', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['agent_instance_id', 'kernel_version', 'agent_labels']) {
    await db.schema.alterTable('host').dropColumn(column).execute();
  }
}
