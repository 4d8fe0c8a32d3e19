// The one place billing reads usage. Everything that prices usage asks this function for exact
// integer quantities. They come from the device rollups (usage/usage-query.ts usageTotals, grouped
// by device so each device's class applies): every boundary a closed statement has (month starts,
// price books' effective_from) is on the 15-minute grid the rollups keep. A rated period may start
// or end off the grid (RateUsage takes any instants): the few minutes between such an end and the
// grid come from the raw samples.
import { type Kysely, sql } from 'kysely';
import type { Database } from '../store/schema.js';
import { SLOT_MS } from '../usage/rollups.js';
import { usageTotals } from '../usage/usage-query.js';
import { type ClassQuantities, type Quantities, zeroQuantities } from './rating.js';

/** Device label whose value is a device's class for pricing ("" when absent). */
export const DEVICE_CLASS_LABEL = 'class';

/** Samples whose state counts as running; every other state counts as stopped. */
const RUNNING_STATES = ['running', 'booting'] as const;

/** Tenant ids per query (bound parameters stay far under PostgreSQL's limit). */
const BATCH = 1000;

/** Seconds-based sums of one tenant's device (rollup units: seconds, millicore-seconds, ...). */
interface DeviceSeconds {
  tenantId: string;
  deviceId: string;
  running: bigint;
  stopped: bigint;
  vcpu: bigint;
  memory: bigint;
  storage: bigint;
}

/**
 * Measured usage per tenant and device class over [start, end): a sample counts when its start
 * time falls in the range, under the tenant the control plane stored it for. Quantities are in
 * measured units (see rating.ts MEASURED_PER_UNIT): device-minutes, millicore-minutes, MiB-minutes,
 * GiB-minutes, each the exact sum of seconds of the tenant's devices of one class divided by 60
 * (samples are whole minutes, so nothing is lost; a partial minute left over would be dropped).
 * Tenants without usage are absent. A device's class is its label "class" now.
 */
export async function usageQuantities(
  db: Kysely<Database>,
  tenantIds: readonly string[],
  start: Date,
  end: Date,
): Promise<Map<string, ClassQuantities>> {
  const out = new Map<string, ClassQuantities>();
  const lo = Math.ceil(start.getTime() / SLOT_MS) * SLOT_MS;
  const hi = Math.floor(end.getTime() / SLOT_MS) * SLOT_MS;
  for (let i = 0; i < tenantIds.length; i += BATCH) {
    const ids = tenantIds.slice(i, i + BATCH);
    const devices: DeviceSeconds[] = [];
    if (lo < hi) {
      const rows = await usageTotals(db, {
        tenantIds: ids,
        start: new Date(lo),
        end: new Date(hi),
        groupBy: 'device',
      });
      for (const r of rows) {
        devices.push({
          tenantId: r.tenantId,
          deviceId: r.deviceId,
          running: r.runningSeconds,
          stopped: r.stoppedSeconds,
          vcpu: r.vcpuMillicoreSeconds,
          memory: r.memoryMibSeconds,
          storage: r.storageGibSeconds,
        });
      }
      if (start.getTime() < lo) devices.push(...(await rawSeconds(db, ids, start, new Date(lo))));
      if (hi < end.getTime()) devices.push(...(await rawSeconds(db, ids, new Date(hi), end)));
    } else {
      devices.push(...(await rawSeconds(db, ids, start, end)));
    }
    const classes = await classesOf(db, [...new Set(devices.map((d) => d.deviceId))]);
    const seconds = new Map<string, Map<string, Quantities>>();
    for (const d of devices) {
      let byClass = seconds.get(d.tenantId);
      if (!byClass) {
        byClass = new Map();
        seconds.set(d.tenantId, byClass);
      }
      const cls = classes.get(d.deviceId) ?? '';
      const q = byClass.get(cls) ?? zeroQuantities();
      q.device_minutes += d.running;
      q.stopped_device_minutes += d.stopped;
      q.vcpu_minutes += d.vcpu;
      q.memory_gib_minutes += d.memory;
      q.storage_gib_minutes += d.storage;
      byClass.set(cls, q);
    }
    for (const [tenantId, byClass] of seconds) {
      const minutes: ClassQuantities = new Map();
      for (const [cls, q] of byClass) {
        if (Object.values(q).every((v) => v === 0n)) continue;
        const m = zeroQuantities();
        for (const k of Object.keys(q) as (keyof Quantities)[]) m[k] = q[k] / 60n;
        minutes.set(cls, m);
      }
      if (minutes.size > 0) out.set(tenantId, minutes);
    }
  }
  return out;
}

/** Each device's class now ("" without the label or when the device is gone). */
async function classesOf(db: Kysely<Database>, deviceIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < deviceIds.length; i += BATCH) {
    const rows = await sql<{ id: string; device_class: string }>`
      select id, coalesce(labels ->> ${DEVICE_CLASS_LABEL}, '') as device_class from device
      where id = any(${deviceIds.slice(i, i + BATCH)}::text[])`.execute(db);
    for (const r of rows.rows) out.set(r.id, r.device_class);
  }
  return out;
}

/** Per-device sums of the raw samples starting in [start, end), with the rollups' arithmetic. */
async function rawSeconds(
  db: Kysely<Database>,
  tenantIds: readonly string[],
  start: Date,
  end: Date,
): Promise<DeviceSeconds[]> {
  const running = sql`s.state in (${sql.join(RUNNING_STATES.map((s) => sql.lit(s)))})`;
  const seconds = sql`floor(extract(epoch from (s.end_time - s.start_time)))::int8`;
  const result = await sql<{
    tenant_id: string;
    device_id: string;
    running: string;
    stopped: string;
    vcpu: string;
    memory: string;
    storage: string;
  }>`
    select s.tenant_id, s.device_id,
      coalesce(sum(${seconds}) filter (where ${running}), 0)::text as running,
      coalesce(sum(${seconds}) filter (where not ${running}), 0)::text as stopped,
      coalesce(sum(${seconds} * s.vcpu_millicores) filter (where ${running}), 0)::text as vcpu,
      coalesce(sum(${seconds} * s.memory_mib) filter (where ${running}), 0)::text as memory,
      coalesce(sum(${seconds} * s.storage_gib), 0)::text as storage
    from usage_sample s
    where s.tenant_id = any(${[...tenantIds]}::text[]) and s.start_time >= ${start} and s.start_time < ${end}
    group by 1, 2`.execute(db);
  return result.rows.map((r) => ({
    tenantId: r.tenant_id,
    deviceId: r.device_id,
    running: BigInt(r.running),
    stopped: BigInt(r.stopped),
    vcpu: BigInt(r.vcpu),
    memory: BigInt(r.memory),
    storage: BigInt(r.storage),
  }));
}
