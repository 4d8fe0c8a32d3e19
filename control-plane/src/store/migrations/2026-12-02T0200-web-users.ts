// Frozen in time: never edit a migration that has shipped; add a new one.
// Web users (email + argon2id password hash), their sign-in sessions (only a hash of the cookie),
// invitations (only a hash of the token) and failed sign-ins, counted per account and per client
// address across replicas.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('web_user')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenant.id'))
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_sign_in_time', 'timestamptz')
    .execute();
  await db.schema.createIndex('web_user_tenant_idx').on('web_user').columns(['tenant_id', 'id']).execute();
  await db.schema
    .createTable('web_session')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('web_user.id').onDelete('cascade'))
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull())
    .addColumn('last_seen_time', 'timestamptz', (c) => c.notNull())
    .addColumn('expire_time', 'timestamptz', (c) => c.notNull())
    .addColumn('revoke_time', 'timestamptz')
    .addColumn('user_agent', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('client_address', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema.createIndex('web_session_user_idx').on('web_session').columns(['user_id', 'id']).execute();
  await db.schema
    .createTable('invitation')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenant.id'))
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('creator', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull())
    .addColumn('expire_time', 'timestamptz', (c) => c.notNull())
    .addColumn('accept_time', 'timestamptz')
    .addColumn('revoke_time', 'timestamptz')
    .addColumn('user_id', 'text', (c) => c.notNull().defaultTo(''))
    .execute();
  await db.schema
    .createIndex('invitation_tenant_idx')
    .on('invitation')
    .columns(['tenant_id', 'id'])
    .execute();
  await db.schema
    .createTable('sign_in_failure')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('sign_in_failure_subject_idx')
    .on('sign_in_failure')
    .columns(['scope', 'subject', 'create_time'])
    .execute();
  await db.schema
    .createIndex('sign_in_failure_time_idx')
    .on('sign_in_failure')
    .column('create_time')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('sign_in_failure').execute();
  await db.schema.dropTable('invitation').execute();
  await db.schema.dropTable('web_session').execute();
  await db.schema.dropTable('web_user').execute();
}
