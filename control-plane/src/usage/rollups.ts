// Rollups: integer counters per device and per tenant at 15 minutes, an hour and a UTC day, kept by
// the intake in the transaction that stores the raw samples (so they are exactly-once too).
//
// A sample counts in the bucket that holds its start_time, for floor((end - start) / 1 s) seconds.
// Running (BOOTING, RUNNING) seconds count vCPU and memory; every second counts storage. Counters are
// seconds, not minutes, so a sample of any length stays exact; the API shows minutes from them.
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { Database, UsageGrain } from '../store/schema.js';

export const GRAINS: readonly UsageGrain[] = [15, 60, 1440];
export const SLOT_MS = 15 * 60_000;

/** A stored sample as the rollups need it. */
export interface RollupSample {
  tenant_id: string;
  device_id: string;
  host_id: string;
  start_time: Date;
  end_time: Date;
  state: string;
  vcpu_millicores: number;
  memory_mib: number;
  storage_gib: number;
}

export function isRunningState(state: string): boolean {
  return state === 'running' || state === 'booting';
}

interface Counters {
  running_s: number;
  stopped_s: number;
  vcpu_mcs: number;
  memory_mibs: number;
  storage_gibs: number;
}

/** What one sample adds. Each term stays far below 2^53 (a sample is at most minutes long). */
export function countersOf(s: RollupSample): Counters {
  const seconds = Math.max(0, Math.floor((s.end_time.getTime() - s.start_time.getTime()) / 1000));
  const running = isRunningState(s.state);
  return {
    running_s: running ? seconds : 0,
    stopped_s: running ? 0 : seconds,
    vcpu_mcs: running ? seconds * s.vcpu_millicores : 0,
    memory_mibs: running ? seconds * s.memory_mib : 0,
    storage_gibs: seconds * s.storage_gib,
  };
}

export function bucketOf(time: number, grain: UsageGrain): number {
  const ms = grain * 60_000;
  return Math.floor(time / ms) * ms;
}

function add(into: Counters, c: Counters): void {
  into.running_s += c.running_s;
  into.stopped_s += c.stopped_s;
  into.vcpu_mcs += c.vcpu_mcs;
  into.memory_mibs += c.memory_mibs;
  into.storage_gibs += c.storage_gibs;
}

const COUNTER_COLUMNS = ['running_s', 'stopped_s', 'vcpu_mcs', 'memory_mibs', 'storage_gibs'] as const;

/** SET clauses that add the new row's counters to the stored ones. */
function increments(table: 'usage_rollup_device' | 'usage_rollup_tenant') {
  const set: Record<string, RawBuilder<string>> = {};
  for (const column of COUNTER_COLUMNS)
    set[column] = sql<string>`${sql.ref(`${table}.${column}`)} + ${sql.ref(`excluded.${column}`)}`;
  return set as Record<(typeof COUNTER_COLUMNS)[number], RawBuilder<string>>;
}

const BATCH = 1000;

/**
 * Adds the samples to the rollups. Rows are written in key order, so concurrent reports (other
 * hosts of the same tenants) lock shared rows in one order and never deadlock.
 */
export async function addToRollups(
  trx: Transaction<Database> | Kysely<Database>,
  samples: readonly RollupSample[],
): Promise<void> {
  if (samples.length === 0) return;
  const devices = new Map<string, { key: [string, UsageGrain, number, string, string]; c: Counters }>();
  const tenants = new Map<string, { key: [string, UsageGrain, number]; c: Counters }>();
  for (const s of samples) {
    const c = countersOf(s);
    for (const grain of GRAINS) {
      const bucket = bucketOf(s.start_time.getTime(), grain);
      const dk = `${s.tenant_id}\u0000${grain}\u0000${bucket}\u0000${s.device_id}\u0000${s.host_id}`;
      let d = devices.get(dk);
      if (!d) {
        d = { key: [s.tenant_id, grain, bucket, s.device_id, s.host_id], c: zero() };
        devices.set(dk, d);
      }
      add(d.c, c);
      const tk = `${s.tenant_id}\u0000${grain}\u0000${bucket}`;
      let t = tenants.get(tk);
      if (!t) {
        t = { key: [s.tenant_id, grain, bucket], c: zero() };
        tenants.set(tk, t);
      }
      add(t.c, c);
    }
  }
  const deviceRows = [...devices.values()].sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 0; i < deviceRows.length; i += BATCH) {
    await trx
      .insertInto('usage_rollup_device')
      .values(
        deviceRows.slice(i, i + BATCH).map(({ key: [tenant_id, grain, bucket, device_id, host_id], c }) => ({
          tenant_id,
          grain,
          bucket_start: new Date(bucket),
          device_id,
          host_id,
          ...c,
        })),
      )
      .onConflict((oc) =>
        oc
          .columns(['tenant_id', 'grain', 'bucket_start', 'device_id', 'host_id'])
          .doUpdateSet(increments('usage_rollup_device')),
      )
      .execute();
  }
  const tenantRows = [...tenants.values()].sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 0; i < tenantRows.length; i += BATCH) {
    await trx
      .insertInto('usage_rollup_tenant')
      .values(
        tenantRows.slice(i, i + BATCH).map(({ key: [tenant_id, grain, bucket], c }) => ({
          tenant_id,
          grain,
          bucket_start: new Date(bucket),
          ...c,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['tenant_id', 'grain', 'bucket_start']).doUpdateSet(increments('usage_rollup_tenant')),
      )
      .execute();
  }
}

function zero(): Counters {
  return { running_s: 0, stopped_s: 0, vcpu_mcs: 0, memory_mibs: 0, storage_gibs: 0 };
}

/** One fixed order of keys: every transaction that writes shared rows locks them in this order. */
function compareKeys(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}
