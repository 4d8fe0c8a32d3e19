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
import { type Kysely, sql, type Transaction } from 'kysely';
import { ResourceExhaustedError } from '../errors.js';
import type { Database, QuotaTable } from '../store/schema.js';

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
export async function admit(trx: Transaction<Database>, tenantId: string, delta: QuotaUse): Promise<void> {
  if (addsNothing(delta)) return;
  const path = await sql<QuotaTable & { depth: number }>`
    with recursive up(id, parent_id, depth) as (
      select id, parent_id, 0 from tenant where id = ${tenantId}
      union all
      select t.id, t.parent_id, up.depth + 1 from tenant t join up on t.id = up.parent_id
    )
    select q.*, up.depth from quota q join up on up.id = q.tenant_id
    order by q.tenant_id
    for share of q`.execute(trx);
  const limited = path.rows.filter((row) =>
    DIMENSIONS.some(([key, column]) => delta[key] > 0 && row[column] !== null),
  );
  if (limited.length === 0) return;
  for (const row of limited) {
    await sql`select pg_advisory_xact_lock(${ADMISSION_LOCK_CLASS}, hashtext(${row.tenant_id}))`.execute(trx);
  }
  // Nearest tenant first, so the refusal names the limit closest to the caller.
  limited.sort((a, b) => Number(a.depth) - Number(b.depth));
  for (const row of limited) {
    const use = await subtreeUse(trx, row.tenant_id);
    for (const [key, column, unit] of DIMENSIONS) {
      const limit = row[column];
      if (delta[key] <= 0 || limit === null) continue;
      if (use[key] + delta[key] > limit) {
        throw new QuotaExceededError(row.tenant_id, column, limit, use[key], delta[key], unit);
      }
    }
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
