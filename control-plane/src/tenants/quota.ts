// Quota limits: a child's limit never exceeds its parent's (checked here when one is set); what a
// subtree uses is counted by admission.ts, which enforces the limits when devices are created or
// started.
import type { Kysely, Transaction } from 'kysely';
import { InvalidArgumentError } from '../errors.js';
import type { Database } from '../store/schema.js';
import { runningSecondsOf } from '../usage/usage-query.js';

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

type LimitRow = { tenant_id: string } & Limits;

/**
 * Refuses limits above an ancestor's (the smallest limit set anywhere above wins: an ancestor
 * without a limit of its own defers to its own ancestors) or below a descendant's.
 */
export function checkLimits(
  limits: Limits,
  ancestors: readonly LimitRow[],
  descendants: readonly LimitRow[],
): void {
  for (const column of LIMIT_COLUMNS) {
    const wanted = limits[column];
    if (wanted === null) continue;
    for (const row of ancestors) {
      const ceiling = row[column];
      if (ceiling !== null && wanted > ceiling) {
        throw new InvalidArgumentError(
          `quota.${column}`,
          wanted,
          `exceeds the limit ${ceiling} of ancestor tenant ${JSON.stringify(row.tenant_id)}`,
        );
      }
    }
    for (const row of descendants) {
      const floor = row[column];
      if (floor !== null && wanted < floor) {
        throw new InvalidArgumentError(
          `quota.${column}`,
          wanted,
          `is below the limit ${floor} of descendant tenant ${JSON.stringify(row.tenant_id)}; lower that first`,
        );
      }
    }
  }
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

/**
 * Device minutes (RUNNING and BOOTING count as running, see the agent proto) of the tenants in a
 * period, from the tenant rollups (a period starts and ends on UTC day edges, which are rollup
 * edges): whole minutes of the summed running seconds.
 */
export async function deviceMinutesOf(
  db: Db,
  tenants: readonly string[],
  period: { start: Date; end: Date },
): Promise<number> {
  const seconds = await runningSecondsOf(db, tenants, period.start, period.end);
  return Number(seconds / 60n);
}
