// Frozen in time: never edit a migration that has shipped; add a new one.
//
// Month queries over the tenant rollups (QueryUsage by tenant or subtree, quota, billing) read a
// range of (tenant_id, grain, bucket_start) per tenant and run. Through the primary key each row
// is a heap visit, and a tenant's rows of one month lie on as many heap pages as days (the intake
// adds them as time passes, among every other tenant's). With the counters in the index the same
// ranges are index-only scans over contiguous leaf pages. The table is small (a tenant has some
// 130 rows a day) and the intake updates a handful of its rows per report, so the cost of
// non-HOT updates is small.
import { type Kysely, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: migrations are typed against no particular schema.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create index usage_rollup_tenant_covering_idx on usage_rollup_tenant (tenant_id, grain, bucket_start)
    include (running_s, stopped_s, vcpu_mcs, memory_mibs, storage_gibs)`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: see up().
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index usage_rollup_tenant_covering_idx`.execute(db);
}
