// Frozen in time: never edit a migration that has shipped; add a new one.
//
// Egress bytes per usage sample, as the agents meter them (each phone's firewall rule counts what
// it lets out to the internet), summed into the device and tenant rollups like the other counters.
// Existing rows had no egress metered: 0. The tenant rollups' covering index carries the new
// counter too, so month queries stay index-only.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  for (const table of ['usage_sample', 'usage_rollup_device', 'usage_rollup_tenant']) {
    await sql`alter table ${sql.table(table)} add column egress_bytes int8 not null default 0`.execute(db);
  }
  await sql`drop index usage_rollup_tenant_covering_idx`.execute(db);
  await sql`
    create index usage_rollup_tenant_covering_idx on usage_rollup_tenant (tenant_id, grain, bucket_start)
    include (running_s, stopped_s, vcpu_mcs, memory_mibs, storage_gibs, egress_bytes)`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index usage_rollup_tenant_covering_idx`.execute(db);
  await sql`
    create index usage_rollup_tenant_covering_idx on usage_rollup_tenant (tenant_id, grain, bucket_start)
    include (running_s, stopped_s, vcpu_mcs, memory_mibs, storage_gibs)`.execute(db);
  for (const table of ['usage_sample', 'usage_rollup_device', 'usage_rollup_tenant']) {
    await sql`alter table ${sql.table(table)} drop column egress_bytes`.execute(db);
  }
}
