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
  /** Bytes sent to the internet in the sample (0 when the agent meters none). */
  egress_bytes?: number;
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
  egress_bytes: number;
}

/** What one sample adds. Each term stays far below 2^53 (a sample is at most minutes long). */
export function countersOf(s: RollupSample): Counters {
  const c = zero();
  addSample(c, s, s.start_time.getTime());
  return c;
}

/** Adds what one sample (starting at `start`, its start_time in ms) adds. */
function addSample(into: Counters, s: RollupSample, start: number): void {
  const seconds = Math.max(0, Math.floor((s.end_time.getTime() - start) / 1000));
  if (isRunningState(s.state)) {
    into.running_s += seconds;
    into.vcpu_mcs += seconds * s.vcpu_millicores;
    into.memory_mibs += seconds * s.memory_mib;
  } else into.stopped_s += seconds;
  into.storage_gibs += seconds * s.storage_gib;
  into.egress_bytes += s.egress_bytes ?? 0;
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
  into.egress_bytes += c.egress_bytes;
}

const COUNTER_COLUMNS = [
  'running_s',
  'stopped_s',
  'vcpu_mcs',
  'memory_mibs',
  'storage_gibs',
  'egress_bytes',
] as const;

/** SET clauses that add the new row's counters to the stored ones. */
function increments(table: 'usage_rollup_device' | 'usage_rollup_tenant') {
  return sql.join(
    COUNTER_COLUMNS.map(
      (c) => sql`${sql.ref(c)} = ${sql.ref(`${table}.${c}`)} + ${sql.ref(`excluded.${c}`)}`,
    ),
  );
}

/** The counters of rows as one bigint array per column, for unnest. */
function counterArrays(rows: readonly { c: Counters }[]) {
  return sql.join(COUNTER_COLUMNS.map((column) => sql`${rows.map((r) => r.c[column])}::int8[]`));
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Rows per statement: arrays are one parameter each, so this only bounds a statement's size. */
const BATCH = 5000;

/** Slots of a month in usage_device_month.slots: 31 days of 96 quarter hours. */
export const MONTH_SLOTS = 31 * 96;

/** The UTC month holding `time`. */
export function monthOf(time: number): number {
  const d = new Date(time);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/**
 * Adds the samples to the rollups, and their 15-minute slots to usage_device_month. Deltas are
 * summed per row first (a report of 1,000 one-minute samples of 50 devices becomes some 150 device
 * rows and a handful of tenant rows per grain), then written with one statement per table over
 * unnest'ed arrays. Rows are written in key order, so concurrent reports (other hosts of the same
 * tenants) lock shared rows in one order and never deadlock.
 */
export async function addToRollups(
  trx: Transaction<Database> | Kysely<Database>,
  samples: readonly RollupSample[],
): Promise<void> {
  for (const statement of rollupWrites(samples)) await statement.execute(trx);
}

/**
 * The statements of addToRollups, unexecuted (the intake runs them as parts of one statement, in
 * this order: device rollups, tenant rollups, device months).
 */
export function rollupWrites(samples: readonly RollupSample[]): RawBuilder<unknown>[] {
  const out: RawBuilder<unknown>[] = [];
  if (samples.length === 0) return out;
  // Summed per (tenant, device, host) first, one string key per sample; buckets by number within.
  // Tenant rows are then the sums of the device rows.
  const series = new Map<
    string,
    { tenant: string; device: string; host: string; buckets: Map<number, Counters>[] }
  >();
  const months = new Map<string, { key: [string, number, string]; slots: Uint8Array }>();
  let monthLo = 0;
  let monthHi = 0;
  for (const s of samples) {
    const start = s.start_time.getTime();
    const key = `${s.tenant_id}\u0000${s.device_id}\u0000${s.host_id}`;
    let e = series.get(key);
    if (!e) {
      e = { tenant: s.tenant_id, device: s.device_id, host: s.host_id, buckets: GRAINS.map(() => new Map()) };
      series.set(key, e);
    }
    for (let g = 0; g < GRAINS.length; g++) {
      const bucket = bucketOf(start, GRAINS[g] as UsageGrain);
      const byBucket = e.buckets[g] as Map<number, Counters>;
      let c = byBucket.get(bucket);
      if (!c) {
        c = zero();
        byBucket.set(bucket, c);
      }
      addSample(c, s, start);
    }
    if (start < monthLo || start >= monthHi) {
      monthLo = monthOf(start);
      monthHi = monthOf(monthLo + 32 * 86_400_000);
    }
    const mk = `${s.tenant_id}\u0000${monthLo}\u0000${s.device_id}`;
    let m = months.get(mk);
    if (!m) {
      m = { key: [s.tenant_id, monthLo, s.device_id], slots: new Uint8Array(MONTH_SLOTS).fill(48) };
      months.set(mk, m);
    }
    m.slots[Math.floor((start - monthLo) / SLOT_MS)] = 49;
  }
  const devices: { key: [string, UsageGrain, number, string, string]; c: Counters }[] = [];
  const tenants = new Map<string, { key: [string, UsageGrain, number]; c: Counters }>();
  for (const e of series.values()) {
    for (let g = 0; g < GRAINS.length; g++) {
      const grain = GRAINS[g] as UsageGrain;
      for (const [bucket, c] of e.buckets[g] as Map<number, Counters>) {
        devices.push({ key: [e.tenant, grain, bucket, e.device, e.host], c });
        const tk = `${e.tenant}\u0000${grain}\u0000${bucket}`;
        let t = tenants.get(tk);
        if (!t) {
          t = { key: [e.tenant, grain, bucket], c: zero() };
          tenants.set(tk, t);
        }
        add(t.c, c);
      }
    }
  }
  const deviceRows = devices.sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 0; i < deviceRows.length; i += BATCH) {
    const rows = deviceRows.slice(i, i + BATCH);
    out.push(sql`insert into usage_rollup_device (tenant_id, grain, bucket_start, device_id, host_id,
        ${sql.join(COUNTER_COLUMNS.map((c) => sql.ref(c)))})
      select * from unnest(${rows.map((r) => r.key[0])}::text[], ${rows.map((r) => r.key[1])}::int2[],
        ${rows.map((r) => iso(r.key[2]))}::timestamptz[], ${rows.map((r) => r.key[3])}::text[],
        ${rows.map((r) => r.key[4])}::text[], ${counterArrays(rows)})
      on conflict (tenant_id, grain, bucket_start, device_id, host_id)
      do update set ${increments('usage_rollup_device')}`);
  }
  const tenantRows = [...tenants.values()].sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 0; i < tenantRows.length; i += BATCH) {
    const rows = tenantRows.slice(i, i + BATCH);
    out.push(sql`insert into usage_rollup_tenant (tenant_id, grain, bucket_start,
        ${sql.join(COUNTER_COLUMNS.map((c) => sql.ref(c)))})
      select * from unnest(${rows.map((r) => r.key[0])}::text[], ${rows.map((r) => r.key[1])}::int2[],
        ${rows.map((r) => iso(r.key[2]))}::timestamptz[], ${counterArrays(rows)})
      on conflict (tenant_id, grain, bucket_start)
      do update set ${increments('usage_rollup_tenant')}`);
  }
  const monthRows = [...months.values()].sort((a, b) => compareKeys(a.key, b.key));
  const decoder = new TextDecoder();
  for (let i = 0; i < monthRows.length; i += BATCH) {
    const rows = monthRows.slice(i, i + BATCH);
    out.push(sql`insert into usage_device_month (tenant_id, month, device_id, slots)
      select t, m, d, s::bit(${sql.lit(MONTH_SLOTS)}) from unnest(${rows.map((r) => r.key[0])}::text[],
        ${rows.map((r) => iso(r.key[1]))}::timestamptz[], ${rows.map((r) => r.key[2])}::text[],
        ${rows.map((r) => decoder.decode(r.slots))}::text[]) as u(t, m, d, s)
      on conflict (tenant_id, month, device_id)
      do update set slots = usage_device_month.slots | excluded.slots`);
  }
  return out;
}

function zero(): Counters {
  return { running_s: 0, stopped_s: 0, vcpu_mcs: 0, memory_mibs: 0, storage_gibs: 0, egress_bytes: 0 };
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
