// Frozen in time: never edit a migration that has shipped; add a new one.
// Billing: price books (a tenant's prices from a moment on) and monthly statements. Both are
// immutable: a trigger refuses every UPDATE and DELETE, so a closed statement stays as it was closed
// and a price change is always a new book with a later effective_from.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('price_book')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('effective_from', 'timestamptz', (c) => c.notNull())
    .addColumn('prices', 'jsonb', (c) => c.notNull())
    .addColumn('minimum_charge', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('creator', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('price_book_tenant_effective_key', ['tenant_id', 'effective_from'])
    .execute();
  await db.schema
    .createTable('statement')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('month', 'text', (c) => c.notNull())
    .addColumn('currency', 'text', (c) => c.notNull())
    .addColumn('total', 'text', (c) => c.notNull())
    .addColumn('lines', 'jsonb', (c) => c.notNull())
    .addColumn('customers', 'jsonb', (c) => c.notNull())
    .addColumn('customers_total', 'text', (c) => c.notNull())
    .addColumn('margin', 'text', (c) => c.notNull())
    .addColumn('close_time', 'timestamptz', (c) => c.notNull())
    .addUniqueConstraint('statement_tenant_month_key', ['tenant_id', 'month'])
    .execute();
  await sql`
    create function billing_immutable() returns trigger language plpgsql as $$
    begin
      raise exception '% rows are immutable', tg_table_name using errcode = 'restrict_violation';
    end $$`.execute(db);
  for (const table of ['price_book', 'statement']) {
    await sql`create trigger ${sql.raw(`${table}_immutable`)} before update or delete on ${sql.table(table)}
      for each row execute function billing_immutable()`.execute(db);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('statement').ifExists().execute();
  await db.schema.dropTable('price_book').ifExists().execute();
  await sql`drop function if exists billing_immutable()`.execute(db);
}
