// Frozen in time: never edit a migration that has shipped; add a new one.
// The audit log becomes an audit trail: each row names the target's tenant (tenant_id) as well as
// the actor's (actor_tenant_id), the actor's kind, the resource by type and id, the caller's
// address, the call's request id and idempotency key, and the message the caller was sent.
// Outcomes are spelled in snake_case as the API promises ("not_found", not "NotFound"): the rows
// written before are rewritten once, here, before the table becomes append-only: a trigger then
// refuses every UPDATE, DELETE and TRUNCATE, whoever sends it (no code path may change history).
//
// Also the per-tenant rate limit overrides (api/rate-limit.ts) and the shared token buckets the
// replicas lease tokens from.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('audit_log')
    .addColumn('actor_tenant_id', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('actor_kind', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('resource_type', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('resource_id', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('remote_address', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('request_id', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('idempotency_key', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('message', 'text', (c) => c.notNull().defaultTo(''))
    .execute();

  // Rows written so far were filed under the actor's tenant and spelled outcomes in CamelCase;
  // their resource column holds `fieldId=value` pairs, the first of which names the resource.
  await sql`
    update audit_log set
      actor_tenant_id = tenant_id,
      actor_kind = case
        when actor like 'key\\_%' then 'api_key'
        when actor like 'usr\\_%' then 'user'
        else '' end,
      outcome = lower(regexp_replace(outcome, '([a-z0-9])([A-Z])', '\\1_\\2', 'g')),
      resource_id = coalesce(substring(resource from '^[A-Za-z]*Id=([^ ]+)'), ''),
      resource_type = case
        when method like 'DeviceService/%' or method like 'AdbTunnel/%' then 'device'
        when method like 'StreamSession/%' then 'stream_session'
        when method like 'HostService/%' then 'host'
        when method like 'TenantService/%' then 'tenant'
        when method like 'ApiKeyService/%' then 'api_key'
        when method like 'ImageService/%' then 'image'
        when method like 'UserService/%' then 'user'
        when method like 'ArtifactService/%' then 'upload'
        else '' end`.execute(db);

  await db.schema
    .createIndex('audit_log_actor_tenant_idx')
    .on('audit_log')
    .columns(['actor_tenant_id', 'id'])
    .execute();
  await db.schema
    .createIndex('audit_log_resource_idx')
    .on('audit_log')
    .columns(['resource_id', 'id'])
    .execute();

  await sql`
    create function audit_log_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
    end
    $$`.execute(db);
  await sql`
    create trigger audit_log_append_only before update or delete on audit_log
    for each statement execute function audit_log_append_only()`.execute(db);
  await sql`
    create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_append_only()`.execute(db);

  await db.schema
    .createTable('tenant_rate_limit')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_rps', 'integer')
    .addColumn('tenant_burst', 'integer')
    .addColumn('key_rps', 'integer')
    .addColumn('key_burst', 'integer')
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('rate_limit_bucket')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('tokens', 'double precision', (c) => c.notNull())
    .addColumn('last_grant', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('refill_time', 'timestamptz', (c) => c.notNull())
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('rate_limit_bucket').ifExists().execute();
  await db.schema.dropTable('tenant_rate_limit').ifExists().execute();
  await sql`drop trigger if exists audit_log_no_truncate on audit_log`.execute(db);
  await sql`drop trigger if exists audit_log_append_only on audit_log`.execute(db);
  await sql`drop function if exists audit_log_append_only()`.execute(db);
  await db.schema.dropIndex('audit_log_resource_idx').ifExists().execute();
  await db.schema.dropIndex('audit_log_actor_tenant_idx').ifExists().execute();
  for (const column of [
    'message',
    'idempotency_key',
    'request_id',
    'remote_address',
    'resource_id',
    'resource_type',
    'actor_kind',
    'actor_tenant_id',
  ]) {
    await db.schema.alterTable('audit_log').dropColumn(column).execute();
  }
}
