// The one place billing reads usage. Everything that prices usage asks this function for exact
// integer quantities; it reads the per-minute samples today and is the seam where a rollup source
// (hourly or finer, aligned so every piece boundary falls on a bucket edge) takes its place.
import { type Kysely, sql } from 'kysely';
import type { Database } from '../store/schema.js';
import { type ClassQuantities, type Quantities, zeroQuantities } from './rating.js';

/** Device label whose value is a device's class for pricing ("" when absent). */
export const DEVICE_CLASS_LABEL = 'class';

/** Samples whose state counts as running; every other state counts as stopped. */
const RUNNING_STATES = ['running', 'booting'] as const;

/** Tenant ids per query (bound parameters stay far under PostgreSQL's limit). */
const BATCH = 1000;

/**
 * Measured usage per tenant and device class over [start, end): a sample counts when its start
 * time falls in the range, under the tenant the control plane stored it for. Quantities are in
 * measured units (see rating.ts MEASURED_PER_UNIT): device-minutes, millicore-minutes, MiB-minutes,
 * GiB-minutes. Tenants without usage are absent. A device's class is its label "class" now.
 */
export async function usageQuantities(
  db: Kysely<Database>,
  tenantIds: readonly string[],
  start: Date,
  end: Date,
): Promise<Map<string, ClassQuantities>> {
  const out = new Map<string, ClassQuantities>();
  for (let i = 0; i < tenantIds.length; i += BATCH) {
    const ids = tenantIds.slice(i, i + BATCH);
    const running = sql`s.state in (${sql.join(RUNNING_STATES.map((s) => sql.lit(s)))})`;
    // Summed per device first, so a device's class is read once per device, not once per sample.
    const result = await sql<{
      tenant_id: string;
      device_class: string;
      running: string;
      stopped: string;
      vcpu: string;
      memory: string;
      storage: string;
    }>`
      with per_device as (
        select s.tenant_id, s.device_id,
          count(*) filter (where ${running}) as running,
          count(*) filter (where not ${running}) as stopped,
          coalesce(sum(s.vcpu_millicores) filter (where ${running}), 0) as vcpu,
          coalesce(sum(s.memory_mib) filter (where ${running}), 0) as memory,
          coalesce(sum(s.storage_gib), 0) as storage
        from usage_sample s
        where s.tenant_id in (${sql.join(ids)})
          and s.start_time >= ${start} and s.start_time < ${end}
        group by 1, 2
      )
      select p.tenant_id,
        coalesce(d.labels ->> ${DEVICE_CLASS_LABEL}, '') as device_class,
        sum(p.running)::text as running,
        sum(p.stopped)::text as stopped,
        sum(p.vcpu)::text as vcpu,
        sum(p.memory)::text as memory,
        sum(p.storage)::text as storage
      from per_device p
      left join device d on d.id = p.device_id
      group by 1, 2`.execute(db);
    for (const row of result.rows) {
      const q: Quantities = zeroQuantities();
      q.device_minutes = BigInt(row.running);
      q.stopped_device_minutes = BigInt(row.stopped);
      q.vcpu_minutes = BigInt(row.vcpu);
      q.memory_gib_minutes = BigInt(row.memory);
      q.storage_gib_minutes = BigInt(row.storage);
      let byClass = out.get(row.tenant_id);
      if (!byClass) {
        byClass = new Map();
        out.set(row.tenant_id, byClass);
      }
      byClass.set(row.device_class, q);
    }
  }
  return out;
}
