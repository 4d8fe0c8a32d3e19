// Frozen in time: never edit a migration that has shipped; add a new one.
//
// Usage at scale. Raw samples move to a table partitioned by month of start_time (PostgreSQL
// declarative partitioning), so old months are dropped whole (retention) instead of deleted row by
// row. A unique index on a partitioned table must include the partition key, so (host_id,
// sequence) can no longer be unique there; exactly-once moves to usage_seen, a small table keyed
// by (host_id, sequence) that holds only the sequences above the host's cursor (the gaps the agent
// has yet to fill). Everything at or below the cursor is stored by the cursor's own invariant, so
// a resent sample is recognised whatever start_time it carries and whether or not its month's raw
// partition still exists. Keying the raw table by (host_id, sequence, start_time) instead would
// trust the agent to resend the same start_time, and would forget sequences once retention drops
// their month.
//
// Rollups: integer counters (seconds, never floats) per device and per tenant at three grains,
// 15 minutes, an hour and a UTC day, kept by the intake in the same transaction as the raw rows.
// Every real time-zone offset is a multiple of 15 minutes, so any local hour, day or month is a
// whole number of 15-minute buckets; the coarse grains only make long ranges cheap. Retention
// never touches the rollups.
import { type Kysely, sql } from 'kysely';

const MONTH_PARTITION = (start: Date) =>
  `usage_sample_p${start.getUTCFullYear()}${String(start.getUTCMonth() + 1).padStart(2, '0')}`;

const COUNTERS = ['running_s', 'stopped_s', 'vcpu_mcs', 'memory_mibs', 'storage_gibs'] as const;

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table usage_sample rename to usage_sample_flat`.execute(db);
  await sql`alter table usage_sample_flat rename constraint usage_sample_pk to usage_sample_flat_pk`.execute(
    db,
  );
  await sql`alter index usage_sample_tenant_idx rename to usage_sample_flat_tenant_idx`.execute(db);
  await sql`
    create table usage_sample (
      host_id text not null,
      sequence bigint not null,
      device_id text not null,
      tenant_id text not null,
      start_time timestamptz not null,
      end_time timestamptz not null,
      vcpu_millicores integer not null,
      memory_mib integer not null,
      storage_gib integer not null,
      state text not null,
      create_time timestamptz not null default now()
    ) partition by range (start_time)`.execute(db);
  await sql`create index usage_sample_tenant_idx on usage_sample (tenant_id, start_time)`.execute(db);
  await sql`create index usage_sample_host_idx on usage_sample (host_id, sequence)`.execute(db);

  const months = await sql<{ month: Date }>`
    select distinct date_trunc('month', start_time at time zone 'UTC') at time zone 'UTC' as month
    from usage_sample_flat`.execute(db);
  for (const { month } of months.rows) {
    const start = new Date(month);
    const end = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
    await sql`create table ${sql.table(MONTH_PARTITION(start))} partition of usage_sample
      for values from (${sql.lit(start.toISOString())}) to (${sql.lit(end.toISOString())})`.execute(db);
  }
  await sql`insert into usage_sample select host_id, sequence, device_id, tenant_id, start_time, end_time,
    vcpu_millicores, memory_mib, storage_gib, state, create_time from usage_sample_flat`.execute(db);

  await sql`
    create table usage_seen (
      host_id text not null,
      sequence bigint not null,
      primary key (host_id, sequence)
    )`.execute(db);
  await sql`
    insert into usage_seen (host_id, sequence)
    select s.host_id, s.sequence from (
      select host_id, sequence from usage_sample_flat
      union
      select host_id, sequence from usage_rejected
    ) s left join usage_cursor c on c.host_id = s.host_id
    where s.sequence > coalesce(c.acked_sequence, 0)`.execute(db);

  const counters = sql.raw(COUNTERS.map((c) => `${c} bigint not null default 0`).join(', '));
  await sql`
    create table usage_rollup_device (
      tenant_id text not null,
      grain smallint not null,
      bucket_start timestamptz not null,
      device_id text not null,
      host_id text not null,
      ${counters},
      primary key (tenant_id, grain, bucket_start, device_id, host_id)
    )`.execute(db);
  await sql`
    create table usage_rollup_tenant (
      tenant_id text not null,
      grain smallint not null,
      bucket_start timestamptz not null,
      ${counters},
      primary key (tenant_id, grain, bucket_start)
    )`.execute(db);

  // The rollups of the samples already stored, with the intake's arithmetic (usage/rollups.ts).
  for (const grain of [15, 60, 1440]) {
    const bucket = sql`to_timestamp(floor(extract(epoch from start_time) / ${sql.lit(grain * 60)}) * ${sql.lit(grain * 60)})`;
    const seconds = sql`floor(extract(epoch from (end_time - start_time)))::bigint`;
    const running = sql`(state in ('running', 'booting'))`;
    const sums = sql`
      sum(case when ${running} then ${seconds} else 0 end),
      sum(case when ${running} then 0 else ${seconds} end),
      sum(case when ${running} then ${seconds} * vcpu_millicores else 0 end),
      sum(case when ${running} then ${seconds} * memory_mib else 0 end),
      sum(${seconds} * storage_gib)`;
    await sql`
      insert into usage_rollup_device (tenant_id, grain, bucket_start, device_id, host_id, running_s, stopped_s,
        vcpu_mcs, memory_mibs, storage_gibs)
      select tenant_id, ${sql.lit(grain)}, ${bucket}, device_id, host_id, ${sums}
      from usage_sample group by 1, 2, 3, 4, 5`.execute(db);
    await sql`
      insert into usage_rollup_tenant (tenant_id, grain, bucket_start, running_s, stopped_s,
        vcpu_mcs, memory_mibs, storage_gibs)
      select tenant_id, ${sql.lit(grain)}, ${bucket}, ${sums}
      from usage_sample group by 1, 2, 3`.execute(db);
  }
  await sql`drop table usage_sample_flat`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table usage_rollup_tenant`.execute(db);
  await sql`drop table usage_rollup_device`.execute(db);
  await sql`alter table usage_sample rename to usage_sample_partitioned`.execute(db);
  await sql`
    create table usage_sample (like usage_sample_partitioned including defaults)`.execute(db);
  await sql`insert into usage_sample select * from usage_sample_partitioned`.execute(db);
  await sql`drop table usage_sample_partitioned`.execute(db);
  await sql`alter table usage_sample add constraint usage_sample_pk primary key (host_id, sequence)`.execute(
    db,
  );
  await sql`create index usage_sample_tenant_idx on usage_sample (tenant_id, start_time)`.execute(db);
  await sql`drop table usage_seen`.execute(db);
}
