// A tenant's rate limit overrides, set and read with its quota (Quota fields 20..23). Kept in a
// table of their own (tenant_rate_limit): the rate limiter holds them all in memory on every
// replica (api/rate-limit.ts), and they are not quota limits: no parent bounds them.
import type { Quota } from '@cphone/proto';
import type { Kysely, Transaction } from 'kysely';
import { InvalidArgumentError } from '../errors.js';
import type { Database } from '../store/schema.js';

export const RATE_LIMIT_PATHS = [
  'rate_limit_rps',
  'rate_limit_burst',
  'key_rate_limit_rps',
  'key_rate_limit_burst',
] as const;
type Path = (typeof RATE_LIMIT_PATHS)[number];

const COLUMNS = {
  rate_limit_rps: 'tenant_rps',
  rate_limit_burst: 'tenant_burst',
  key_rate_limit_rps: 'key_rps',
  key_rate_limit_burst: 'key_burst',
} as const satisfies Record<Path, string>;

const FIELDS = {
  rate_limit_rps: 'rateLimitRps',
  rate_limit_burst: 'rateLimitBurst',
  key_rate_limit_rps: 'keyRateLimitRps',
  key_rate_limit_burst: 'keyRateLimitBurst',
} as const satisfies Record<Path, keyof Quota>;

type Columns = Partial<Record<(typeof COLUMNS)[Path], number | null>>;

/** The overrides the request changes (null: back to the default), checked. */
export function rateLimitsOf(quota: Quota | undefined, paths: ReadonlySet<string>): Columns {
  const set: Columns = {};
  for (const path of RATE_LIMIT_PATHS) {
    if (!paths.has(path)) continue;
    const value = quota?.[FIELDS[path]];
    if (value !== undefined) {
      const burst = path.endsWith('burst');
      if (!Number.isSafeInteger(value) || value < (burst ? 1 : 0)) {
        throw new InvalidArgumentError(
          `quota.${path}`,
          String(value),
          burst ? 'must be >= 1' : 'must be >= 0',
        );
      }
    }
    set[COLUMNS[path]] = value ?? null;
  }
  return set;
}

/** Writes the changed overrides; true when anything was written. */
export async function saveRateLimits(
  trx: Transaction<Database>,
  tenantId: string,
  set: Columns,
  now: Date,
): Promise<boolean> {
  if (Object.keys(set).length === 0) return false;
  await trx
    .insertInto('tenant_rate_limit')
    .values({ tenant_id: tenantId, ...set, update_time: now })
    .onConflict((oc) => oc.column('tenant_id').doUpdateSet({ ...set, update_time: now }))
    .execute();
  return true;
}

/** Puts the tenant's overrides on its Quota message (unset where it keeps the default). */
export async function withRateLimits(db: Kysely<Database>, quota: Quota): Promise<Quota> {
  const row = await db
    .selectFrom('tenant_rate_limit')
    .selectAll()
    .where('tenant_id', '=', quota.tenantId)
    .executeTakeFirst();
  if (!row) return quota;
  for (const path of RATE_LIMIT_PATHS) {
    const value = row[COLUMNS[path]];
    if (value !== null) quota[FIELDS[path]] = value;
  }
  return quota;
}
