// Quota limits and usage. Limits are stored and checked against the ancestors' here; enforcing them
// when devices are created or started is the admission code's job.
import { type Kysely, sql, type Transaction } from 'kysely';
import { InvalidArgumentError } from '../errors.js';
import type { Database } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export const LIMIT_COLUMNS = [
  'max_devices',
  'max_running_devices',
  'max_vcpu_millicores',
  'max_memory_mib',
  'max_device_minutes',
] as const;
export type LimitColumn = (typeof LIMIT_COLUMNS)[number];
export type Limits = { [K in LimitColumn]: number | null };

/** The tenant's ancestors, nearest first (the platform last); excludes the tenant itself. */
export async function ancestorsOf(db: Db, tenantId: string): Promise<string[]> {
  const result = await sql<{ id: string; depth: number }>`
    with recursive up(id, parent_id, depth) as (
      select id, parent_id, 0 from tenant where id = ${tenantId}
      union all
      select t.id, t.parent_id, up.depth + 1 from tenant t join up on t.id = up.parent_id
    )
    select id, depth from up where depth > 0 order by depth`.execute(db);
  return result.rows.map((r) => r.id);
}

/**
 * Refuses limits above what an ancestor admits: a child's limit may not exceed the smallest limit
 * set anywhere above it (an ancestor without a limit of its own defers to its own ancestors).
 */
export async function checkAgainstAncestors(db: Db, tenantId: string, limits: Limits): Promise<void> {
  const ancestors = await ancestorsOf(db, tenantId);
  if (ancestors.length === 0) return;
  const rows = await db.selectFrom('quota').selectAll().where('tenant_id', 'in', ancestors).execute();
  for (const column of LIMIT_COLUMNS) {
    const wanted = limits[column];
    if (wanted === null) continue;
    for (const row of rows) {
      const ceiling = row[column];
      if (ceiling !== null && wanted > ceiling) {
        throw new InvalidArgumentError(
          `quota.${column}`,
          wanted,
          `exceeds the limit ${ceiling} of ancestor tenant ${JSON.stringify(row.tenant_id)}`,
        );
      }
    }
  }
}

export interface Usage {
  devices: number;
  runningDevices: number;
  vcpuMillicores: number;
  memoryMib: number;
  deviceMinutes: number;
  periodStart: Date;
  periodEnd: Date;
}

/** The current period (UTC) containing `now`. */
export function periodOf(period: 'day' | 'month', now: Date): { start: Date; end: Date } {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  if (period === 'day') {
    const start = new Date(Date.UTC(y, m, now.getUTCDate()));
    return { start, end: new Date(start.getTime() + 86_400_000) };
  }
  return { start: new Date(Date.UTC(y, m, 1)), end: new Date(Date.UTC(y, m + 1, 1)) };
}

/** What the tenants (a tenant and its descendants) use now, from the device rows and usage samples. */
export async function usageOf(
  db: Db,
  tenants: readonly string[],
  period: 'day' | 'month',
  now: Date,
): Promise<Usage> {
  const { start, end } = periodOf(period, now);
  const devices = await db
    .selectFrom('device')
    .where('tenant_id', 'in', tenants)
    .where('delete_time', 'is', null)
    .where('state', '!=', 'deleted')
    .select((eb) => [
      eb.fn.countAll<number>().as('devices'),
      sql<number>`count(*) filter (where desired_power = 'running')`.as('running'),
      sql<number>`coalesce(sum(vcpu_millicores) filter (where desired_power = 'running'), 0)`.as('vcpu'),
      sql<number>`coalesce(sum(memory_mib) filter (where desired_power = 'running'), 0)`.as('memory'),
    ])
    .executeTakeFirstOrThrow();
  // Samples record the observed state; RUNNING and BOOTING count as running (see the agent proto).
  const minutes = await db
    .selectFrom('usage_sample')
    .where('tenant_id', 'in', tenants)
    .where('state', 'in', ['running', 'booting'])
    .where('start_time', '>=', start)
    .where('start_time', '<', end)
    .select(sql<number>`coalesce(sum(extract(epoch from (end_time - start_time))), 0)`.as('seconds'))
    .executeTakeFirstOrThrow();
  return {
    devices: Number(devices.devices),
    runningDevices: Number(devices.running),
    vcpuMillicores: Number(devices.vcpu),
    memoryMib: Number(devices.memory),
    deviceMinutes: Math.floor(Number(minutes.seconds) / 60),
    periodStart: start,
    periodEnd: end,
  };
}
