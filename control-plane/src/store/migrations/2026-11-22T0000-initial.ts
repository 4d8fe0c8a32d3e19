// Frozen in time: never edit a migration that has shipped; add a new one.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  const now = sql`now()`;
  await db.schema
    .createTable('tenant')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('parent_id', 'text', (c) => c.references('tenant.id'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('platform', 'reseller', 'customer')`))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('delete_time', 'timestamptz')
    .execute();
  await db.schema.createIndex('tenant_parent_idx').on('tenant').columns(['parent_id', 'id']).execute();

  await db.schema
    .createTable('quota')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenant.id'))
    .addColumn('max_devices', 'integer')
    .addColumn('max_running_devices', 'integer')
    .addColumn('max_vcpu_millicores', 'bigint')
    .addColumn('max_memory_mib', 'bigint')
    .addColumn('max_device_minutes', 'bigint')
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();

  await db.schema
    .createTable('api_key')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenant.id'))
    .addColumn('role', 'text', (c) =>
      c.notNull().check(sql`role in ('platform_admin', 'ops', 'tenant_admin', 'tenant_user')`),
    )
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('expire_time', 'timestamptz')
    .addColumn('revoke_time', 'timestamptz')
    .addColumn('last_used_time', 'timestamptz')
    .execute();
  await db.schema.createIndex('api_key_tenant_idx').on('api_key').columns(['tenant_id', 'id']).execute();

  await db.schema
    .createTable('host')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('arch', 'text', (c) => c.notNull())
    .addColumn('labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('connection', 'text', (c) => c.notNull().defaultTo('new'))
    .addColumn('cordoned', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('drain_mode', 'text')
    .addColumn('drain_start_time', 'timestamptz')
    .addColumn('capacity_vcpu_millicores', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('capacity_memory_mib', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('capacity_storage_gib', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('capacity_devices', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('overcommit_cpu', 'double precision', (c) => c.notNull().defaultTo(1))
    .addColumn('overcommit_memory', 'double precision', (c) => c.notNull().defaultTo(1))
    .addColumn('allocated_vcpu_millicores', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('allocated_memory_mib', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('allocated_storage_gib', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('allocated_devices', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('agent_version', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('runtime_kind', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('hostname', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('load', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('last_heartbeat_time', 'timestamptz')
    .addColumn('unreachable_since', 'timestamptz')
    .addColumn('desired_revision', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();

  await db.schema
    .createTable('host_credential')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host_id', 'text', (c) => c.notNull().references('host.id').onDelete('cascade'))
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('revoke_time', 'timestamptz')
    .execute();
  await db.schema.createIndex('host_credential_host_idx').on('host_credential').column('host_id').execute();

  await db.schema
    .createTable('image')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.references('tenant.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('image_ref', 'text', (c) => c.notNull())
    .addColumn('android_version', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('arches', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('required_labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('default_spec', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('min_vcpu_millicores', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('min_memory_mib', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('min_storage_gib', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('delete_time', 'timestamptz')
    .execute();
  await db.schema.createIndex('image_tenant_idx').on('image').columns(['tenant_id', 'id']).execute();

  await db.schema
    .createTable('device')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenant.id'))
    .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('labels', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('image_id', 'text', (c) => c.notNull().references('image.id'))
    .addColumn('spec', 'jsonb', (c) => c.notNull())
    .addColumn('vcpu_millicores', 'integer', (c) => c.notNull())
    .addColumn('memory_mib', 'integer', (c) => c.notNull())
    .addColumn('storage_gib', 'integer', (c) => c.notNull())
    .addColumn('spec_revision', 'bigint', (c) => c.notNull().defaultTo(1))
    .addColumn('placement', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('desired_power', 'text', (c) => c.notNull().defaultTo('running'))
    .addColumn('restart_policy', 'text', (c) => c.notNull().defaultTo('always'))
    .addColumn('restart_generation', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('state_reason', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('state_message', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('host_id', 'text', (c) => c.references('host.id'))
    .addColumn('observed_spec_revision', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('adb_endpoint', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('update_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('delete_time', 'timestamptz')
    .execute();
  // List devices of a tenant in id order (ids sort by creation), filtered by state or host.
  await db.schema.createIndex('device_tenant_idx').on('device').columns(['tenant_id', 'id']).execute();
  await db.schema
    .createIndex('device_tenant_state_idx')
    .on('device')
    .columns(['tenant_id', 'state', 'id'])
    .execute();
  await db.schema.createIndex('device_host_idx').on('device').columns(['host_id', 'id']).execute();
  await db.schema.createIndex('device_labels_idx').on('device').using('gin').column('labels').execute();

  await db.schema
    .createTable('device_event')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('from_state', 'text')
    .addColumn('to_state', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('message', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await db.schema
    .createIndex('device_event_device_idx')
    .on('device_event')
    .columns(['device_id', 'id'])
    .execute();

  await db.schema
    .createTable('idempotency_key')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('response', 'jsonb', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addPrimaryKeyConstraint('idempotency_key_pk', ['tenant_id', 'method', 'key'])
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('resource', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .execute();
  await db.schema.createIndex('audit_log_tenant_idx').on('audit_log').columns(['tenant_id', 'id']).execute();

  await db.schema
    .createTable('usage_sample')
    .addColumn('host_id', 'text', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('start_time', 'timestamptz', (c) => c.notNull())
    .addColumn('end_time', 'timestamptz', (c) => c.notNull())
    .addColumn('vcpu_millicores', 'integer', (c) => c.notNull())
    .addColumn('memory_mib', 'integer', (c) => c.notNull())
    .addColumn('storage_gib', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addPrimaryKeyConstraint('usage_sample_pk', ['host_id', 'sequence'])
    .execute();
  await db.schema
    .createIndex('usage_sample_tenant_idx')
    .on('usage_sample')
    .columns(['tenant_id', 'start_time'])
    .execute();

  await db.schema
    .createTable('usage_cursor')
    .addColumn('host_id', 'text', (c) => c.primaryKey())
    .addColumn('acked_sequence', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('artifact')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'bigint', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('package_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('version_code', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('version_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addPrimaryKeyConstraint('artifact_pk', ['tenant_id', 'sha256'])
    .execute();

  await db.schema
    .createTable('upload')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('expected_size', 'bigint', (c) => c.notNull())
    .addColumn('expected_sha256', 'text', (c) => c.notNull())
    .addColumn('committed_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('state', 'text', (c) => c.notNull().defaultTo('open'))
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(now))
    .addColumn('expire_time', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('upload_tenant_idx').on('upload').columns(['tenant_id', 'id']).execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'upload',
    'artifact',
    'usage_cursor',
    'usage_sample',
    'audit_log',
    'idempotency_key',
    'device_event',
    'device',
    'image',
    'host_credential',
    'host',
    'api_key',
    'quota',
    'tenant',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
