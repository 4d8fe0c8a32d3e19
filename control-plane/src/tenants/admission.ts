// Quota admission: a change that adds devices, running devices, vCPU or memory is admitted only if
// it fits the quota of its tenant and of every ancestor, counted over each one's whole subtree. It
// runs inside the plan applier's transaction (placement/applier.ts), so what it counts and what it
// admits commit together.
//
// Concurrency. Each tenant has a quota row (created with the tenant). An admission takes FOR SHARE
// on the rows of its path: a SetQuota (which updates a row) waits for admissions in flight and
// they wait for it, so an admission counts under limits that hold until it commits. Admissions
// that count the same limited tenant must not run side by side (both would count the other's
// devices as absent), so each then takes a transaction-scoped advisory lock per limited tenant,
// in tenant id order: two creates under one reseller with a limit queue for a few milliseconds,
// siblings under a reseller without one do not. Row locks come after device rows and before host
// rows (store/hosts.ts has the order).
//
// Device minutes. max_device_minutes is read, not counted here: the leader's minutes enforcer
// (tenants/minutes-enforcer.ts) stores each limited tenant's use per period, and a change that
// adds running devices is refused while any tenant on its path has used its minutes up.
//
// Suspension. Nothing is admitted for a tenant with a suspended tenant on its path. Suspending
// takes FOR UPDATE on the suspended tenant's quota row (tenants/tenant-service.ts), so it waits for
// admissions in flight, and an admission that waited for it reads the state after it committed.
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { FailedPreconditionError, ResourceExhaustedError } from '../errors.js';
import type { Database, QuotaTable } from '../store/schema.js';
import { periodOf } from './quota.js';

type Db = Kysely<Database> | Transaction<Database>;

/** What a tenant's subtree uses now, in the quota's dimensions. */
export interface QuotaUse {
  /** Devices that exist (every state but DELETING and DELETED). */
  readonly devices: number;
  /** Of those, devices whose desired power is RUNNING. */
  readonly runningDevices: number;
  /** Sum of vcpu_millicores of the running ones, in millicores. */
  readonly vcpuMillicores: number;
  /** Sum of memory_mib of the running ones, in MiB. */
  readonly memoryMib: number;
}

export const NO_USE: QuotaUse = Object.freeze({
  devices: 0,
  runningDevices: 0,
  vcpuMillicores: 0,
  memoryMib: 0,
});

const DIMENSIONS = [
  ['devices', 'max_devices', 'devices'],
  ['runningDevices', 'max_running_devices', 'running devices'],
  ['vcpuMillicores', 'max_vcpu_millicores', 'vCPU millicores'],
  ['memoryMib', 'max_memory_mib', 'memory MiB'],
] as const satisfies readonly (readonly [keyof QuotaUse, keyof QuotaTable, string])[];

/** The quota columns a refusal can name (QuotaExceededError.dimension). */
export const QUOTA_DIMENSIONS: readonly string[] = DIMENSIONS.map(([, column]) => column);

// pg_advisory_xact_lock(class, hashtext(tenant_id)): the class keeps these apart from other locks.
const ADMISSION_LOCK_CLASS = 0x63710001;

/** The use of `tenantId`'s subtree: what GetQuotaUsage shows and what admission counts. */
export async function subtreeUse(db: Db, tenantId: string): Promise<QuotaUse> {
  const result = await sql<{ devices: number; running: number; vcpu: number; memory: number }>`
    with recursive sub(id) as (
      select id from tenant where id = ${tenantId}
      union all
      select t.id from tenant t join sub on t.parent_id = sub.id
    )
    select
      count(*) as devices,
      count(*) filter (where desired_power = 'running') as running,
      coalesce(sum(vcpu_millicores) filter (where desired_power = 'running'), 0) as vcpu,
      coalesce(sum(memory_mib) filter (where desired_power = 'running'), 0) as memory
    from device
    where tenant_id in (select id from sub) and state not in ('deleting', 'deleted')`.execute(db);
  const row = result.rows[0];
  return {
    devices: Number(row?.devices ?? 0),
    runningDevices: Number(row?.running ?? 0),
    vcpuMillicores: Number(row?.vcpu ?? 0),
    memoryMib: Number(row?.memory ?? 0),
  };
}

/** True when `delta` adds nothing in any dimension (a move, a release): nothing to check. */
export function addsNothing(delta: QuotaUse): boolean {
  return DIMENSIONS.every(([key]) => delta[key] <= 0);
}

/**
 * Admits `delta` for `tenantId` or throws RESOURCE_EXHAUSTED naming the tenant whose limit it
 * would pass, the dimension, the limit and the current use. Call inside the applier's transaction.
 */
export async function admit(
  trx: Transaction<Database>,
  tenantId: string,
  delta: QuotaUse,
  now = new Date(),
): Promise<void> {
  const [error] = await admitAll(trx, [{ tenantId, delta }], now);
  if (error) throw error;
}

export interface AdmissionAsk {
  readonly tenantId: string;
  readonly delta: QuotaUse;
}

/**
 * Admits each ask in turn, the ones before it counted: one refusal (or undefined) per ask, in
 * order; undefined entries ask nothing. One pass of locks and counts serves them all.
 */
export async function admitAll(
  trx: Transaction<Database>,
  asks: readonly (AdmissionAsk | undefined)[],
  now = new Date(),
): Promise<(AdmissionError | undefined)[]> {
  const out: (AdmissionError | undefined)[] = asks.map(() => undefined);
  const positive = asks.filter((a): a is AdmissionAsk => a !== undefined && !addsNothing(a.delta));
  if (positive.length === 0) return out;
  const tenants = [...new Set(positive.map((a) => a.tenantId))];
  // Each asking tenant's path to the root, nearest first.
  const up = await sql<{ origin: string; id: string; depth: number }>`
    with recursive up(origin, id, parent_id, depth) as (
      select id, id, parent_id, 0 from tenant where id in (${sql.join(tenants)})
      union all
      select up.origin, t.id, t.parent_id, up.depth + 1 from tenant t join up on t.id = up.parent_id
    )
    select origin, id, depth from up order by origin, depth`.execute(trx);
  const paths = new Map<string, string[]>();
  for (const row of up.rows) paths.set(row.origin, [...(paths.get(row.origin) ?? []), row.id]);
  const pathIds = [...new Set(up.rows.map((r) => r.id))].sort();
  const rows = await trx
    .selectFrom('quota')
    .selectAll()
    .where('tenant_id', 'in', pathIds)
    .orderBy('tenant_id')
    .forShare()
    .execute();
  const quotas = new Map(rows.map((r) => [r.tenant_id, r]));
  // Read after the quota rows are held, so a suspension that committed while this waited is seen.
  const suspended = new Set(
    (
      await trx
        .selectFrom('tenant')
        .select('id')
        .where('id', 'in', pathIds)
        .where('state', '=', 'suspended')
        .execute()
    ).map((r) => r.id),
  );
  if (suspended.size > 0) {
    asks.forEach((a, i) => {
      if (!a || addsNothing(a.delta)) return;
      const at = paths.get(a.tenantId)?.find((id) => suspended.has(id));
      if (at !== undefined) out[i] = new TenantSuspendedError(at);
    });
  }
  await refuseSpentMinutes(trx, asks, out, paths, rows, now);
  const limited = rows.filter((row) =>
    positive.some(
      (a) =>
        paths.get(a.tenantId)?.includes(row.tenant_id) &&
        DIMENSIONS.some(([key, column]) => a.delta[key] > 0 && row[column] !== null),
    ),
  );
  if (limited.length === 0) return out;
  for (const row of limited) {
    await sql`select pg_advisory_xact_lock(${ADMISSION_LOCK_CLASS}, hashtext(${row.tenant_id}))`.execute(trx);
  }
  const use = new Map<string, QuotaUse>();
  for (const row of limited) use.set(row.tenant_id, await subtreeUse(trx, row.tenant_id));
  asks.forEach((a, i) => {
    if (!a || addsNothing(a.delta) || out[i]) return;
    // Nearest tenant first, so the refusal names the limit closest to the caller.
    const path = (paths.get(a.tenantId) ?? []).filter((id) => use.has(id));
    for (const id of path) {
      const row = quotas.get(id);
      const used = use.get(id) ?? NO_USE;
      for (const [key, column, unit] of DIMENSIONS) {
        const limit = row?.[column] ?? null;
        if (a.delta[key] <= 0 || limit === null) continue;
        if (used[key] + a.delta[key] > limit) {
          out[i] = new QuotaExceededError(id, column, limit, used[key], a.delta[key], unit);
          return;
        }
      }
    }
    for (const id of path) {
      const used = use.get(id) ?? NO_USE;
      use.set(id, {
        devices: used.devices + a.delta.devices,
        runningDevices: used.runningDevices + a.delta.runningDevices,
        vcpuMillicores: used.vcpuMillicores + a.delta.vcpuMillicores,
        memoryMib: used.memoryMib + a.delta.memoryMib,
      });
    }
  });
  return out;
}

type AdmissionError = QuotaExceededError | TenantSuspendedError | DeviceMinutesSpentError;

/** Refuses asks that add running devices under a tenant whose device minutes are used up. */
async function refuseSpentMinutes(
  trx: Transaction<Database>,
  asks: readonly (AdmissionAsk | undefined)[],
  out: (AdmissionError | undefined)[],
  paths: ReadonlyMap<string, readonly string[]>,
  quotas: readonly Selectable<QuotaTable>[],
  now: Date,
): Promise<void> {
  const minuteLimited = quotas.filter((q) => q.max_device_minutes !== null);
  if (minuteLimited.length === 0) return;
  const readings = await trx
    .selectFrom('quota_minutes')
    .select(['tenant_id', 'period_start', 'used_minutes'])
    .where(
      'tenant_id',
      'in',
      minuteLimited.map((q) => q.tenant_id),
    )
    .where(
      'period_start',
      'in',
      [...new Set(minuteLimited.map((q) => periodOf(q.period, now).start.getTime()))].map((t) => new Date(t)),
    )
    .execute();
  const spent = new Map<string, { used: number; limit: number }>();
  for (const q of minuteLimited) {
    const start = periodOf(q.period, now).start.getTime();
    const reading = readings.find((r) => r.tenant_id === q.tenant_id && r.period_start.getTime() === start);
    const limit = q.max_device_minutes ?? 0;
    if (reading && reading.used_minutes >= limit)
      spent.set(q.tenant_id, { used: reading.used_minutes, limit });
  }
  if (spent.size === 0) return;
  asks.forEach((a, i) => {
    if (!a || a.delta.runningDevices <= 0 || out[i]) return;
    const at = paths.get(a.tenantId)?.find((id) => spent.has(id));
    const reading = at === undefined ? undefined : spent.get(at);
    if (at !== undefined && reading) out[i] = new DeviceMinutesSpentError(at, reading.limit, reading.used);
  });
}

/** The subtree's device minutes for the period are used up: nothing more may start. */
export class DeviceMinutesSpentError extends ResourceExhaustedError {
  constructor(
    readonly tenantId: string,
    readonly limit: number,
    readonly used: number,
  ) {
    super(
      `quota of tenant ${JSON.stringify(tenantId)} exceeded: max_device_minutes is ${limit} device minutes per period, ${used} used; starts are refused until the period ends or the limit is raised`,
    );
  }
}

export class QuotaExceededError extends ResourceExhaustedError {
  constructor(
    readonly tenantId: string,
    readonly dimension: string,
    readonly limit: number,
    readonly used: number,
    readonly asked: number,
    unit: string,
  ) {
    super(
      `quota of tenant ${JSON.stringify(tenantId)} exceeded: ${dimension} is ${limit} ${unit}, ${used} in use, this asks for ${asked} more`,
    );
  }
}

/** Nothing is admitted under a suspended tenant: its phones stay stopped and no new ones appear. */
export class TenantSuspendedError extends FailedPreconditionError {
  constructor(readonly tenantId: string) {
    super(`tenant ${JSON.stringify(tenantId)} is suspended`);
  }
}
