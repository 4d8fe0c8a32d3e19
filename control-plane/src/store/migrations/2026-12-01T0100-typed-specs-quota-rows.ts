// Frozen in time: never edit a migration that has shipped; add a new one.
// One owner per fact. The device spec and placement move from protobuf-JSON documents into typed
// columns, so a device row reads straight into the wire types with no JSON round trip (the gpu mode
// and spread strategy keep one spelling each, the project's lower-case names). Every tenant gets a
// quota row (all limits unset), so quota admission locks rows that always exist: a SetQuota that
// would otherwise insert one could not be ordered against creates already counting. Usage samples
// an agent sends for a device that was not on its host are kept apart (acknowledged, never counted).
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('device')
    .addColumn('image_ref', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('screen_width_px', 'integer', (c) => c.notNull().defaultTo(720))
    .addColumn('screen_height_px', 'integer', (c) => c.notNull().defaultTo(1280))
    .addColumn('screen_dpi', 'integer', (c) => c.notNull().defaultTo(320))
    .addColumn('screen_fps', 'integer', (c) => c.notNull().defaultTo(30))
    .addColumn('gpu_mode', 'text', (c) => c.notNull().defaultTo('guest'))
    .addColumn('properties', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('node_selector', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('spread', 'text', (c) => c.notNull().defaultTo('binpack'))
    .addColumn('arch', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('pin_host_id', 'text')
    .execute();
  // protobuf JSON omits fields at their default, hence the coalesces.
  await sql`
    update device set
      image_ref = coalesce(spec->>'imageRef', ''),
      screen_width_px = coalesce((spec->'screen'->>'widthPx')::int, 720),
      screen_height_px = coalesce((spec->'screen'->>'heightPx')::int, 1280),
      screen_dpi = coalesce((spec->'screen'->>'dpi')::int, 320),
      screen_fps = coalesce((spec->'screen'->>'fps')::int, 30),
      gpu_mode = case spec->>'gpuMode'
        when 'GPU_MODE_HOST' then 'host' when 'GPU_MODE_AUTO' then 'auto' else 'guest' end,
      properties = coalesce(spec->'properties', '{}'::jsonb),
      node_selector = coalesce(placement->'nodeSelector', '{}'::jsonb),
      spread = case placement->>'spread'
        when 'SPREAD_STRATEGY_SPREAD' then 'spread'
        when 'SPREAD_STRATEGY_SPREAD_TENANT' then 'spread_tenant' else 'binpack' end,
      arch = coalesce(placement->>'arch', ''),
      pin_host_id = nullif(placement->>'hostId', '')`.execute(db);
  await db.schema.alterTable('device').dropColumn('spec').dropColumn('placement').execute();

  // The agent protocol version a host's agent speaks, from its Hello (Host.protocol_version).
  await db.schema
    .alterTable('host')
    .addColumn('protocol_version', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  // A deleted host leaves its deleted phones' history behind without a host (the live ones were
  // released by the plan applier first); before, any DELETED phone made its host undeletable.
  await sql`alter table device drop constraint device_host_id_fkey`.execute(db);
  await sql`alter table device add constraint device_host_id_fkey
    foreign key (host_id) references host(id) on delete set null`.execute(db);

  await sql`
    insert into quota (tenant_id, update_time)
    select id, now() from tenant
    on conflict (tenant_id) do nothing`.execute(db);

  await db.schema
    .createTable('usage_rejected')
    .addColumn('host_id', 'text', (c) => c.notNull())
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('claimed_tenant_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('create_time', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('usage_rejected_pk', ['host_id', 'sequence'])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('usage_rejected').ifExists().execute();
  await db.schema.alterTable('host').dropColumn('protocol_version').execute();
  await sql`alter table device drop constraint device_host_id_fkey`.execute(db);
  await sql`alter table device add constraint device_host_id_fkey foreign key (host_id) references host(id)`.execute(
    db,
  );
  await db.schema
    .alterTable('device')
    .addColumn('spec', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('placement', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await sql`
    update device set
      spec = jsonb_build_object(
        'imageId', image_id, 'imageRef', image_ref, 'vcpuMillicores', vcpu_millicores,
        'memoryMib', memory_mib, 'storageGib', storage_gib,
        'screen', jsonb_build_object('widthPx', screen_width_px, 'heightPx', screen_height_px,
          'dpi', screen_dpi, 'fps', screen_fps),
        'gpuMode', 'GPU_MODE_' || upper(gpu_mode), 'properties', properties),
      placement = jsonb_strip_nulls(jsonb_build_object(
        'nodeSelector', node_selector, 'spread', 'SPREAD_STRATEGY_' || upper(spread),
        'arch', nullif(arch, ''), 'hostId', pin_host_id))`.execute(db);
  for (const column of [
    'image_ref',
    'screen_width_px',
    'screen_height_px',
    'screen_dpi',
    'screen_fps',
    'gpu_mode',
    'properties',
    'node_selector',
    'spread',
    'arch',
    'pin_host_id',
  ]) {
    await db.schema.alterTable('device').dropColumn(column).execute();
  }
}
