// The database side of the rate limiter (rate-limit.ts): the shared token buckets replicas lease
// tokens from, and the per-tenant overrides (tenants/rate-limit-quota.ts writes them).
import { type Kysely, sql } from 'kysely';
import type { Database } from '../store/schema.js';

export interface Lease {
  /** Tokens taken from the shared bucket for this replica to spend (0..want). */
  readonly granted: number;
  /** Tokens left in the shared bucket after the grant. */
  readonly left: number;
}

/**
 * Takes up to `want` whole tokens from the shared bucket `key` (made full on first use), refilled at
 * `rps` per second up to `burst`, in one statement: the row lock orders concurrent leases, and the
 * refill is measured on the database's clock, so replicas' clocks never matter. A lease whose
 * transaction started before the row's last refill sees a negative interval: it takes that refill
 * back and the next lease counts it again, so no refill is ever counted twice.
 */
export async function leaseTokens(
  db: Kysely<Database>,
  key: string,
  limit: { rps: number; burst: number },
  want: number,
): Promise<Lease> {
  const burst = sql`${limit.burst}::float8`;
  const available = sql`least(${burst}, b.tokens + ${limit.rps}::float8 * extract(epoch from now() - b.refill_time)::float8)`;
  const grant = sql`greatest(0, least(${want}::float8, floor(${available})))`;
  const result = await sql<{ last_grant: number; tokens: number }>`
    insert into rate_limit_bucket as b (key, tokens, last_grant, refill_time)
    values (${key}, ${burst} - least(${want}::float8, ${burst}), least(${want}::float8, ${burst})::integer, now())
    on conflict (key) do update set
      last_grant = ${grant}::integer,
      tokens = ${available} - ${grant},
      refill_time = now()
    returning last_grant, tokens`.execute(db);
  const row = result.rows[0];
  return { granted: Number(row?.last_grant ?? 0), left: Number(row?.tokens ?? 0) };
}

export interface RateLimitOverride {
  readonly tenantRps: number | null;
  readonly tenantBurst: number | null;
  readonly keyRps: number | null;
  readonly keyBurst: number | null;
}

/** Every tenant's overrides (a small table: one row per tenant that has any). */
export async function loadRateLimitOverrides(db: Kysely<Database>): Promise<Map<string, RateLimitOverride>> {
  const rows = await db.selectFrom('tenant_rate_limit').selectAll().execute();
  return new Map(
    rows.map((r) => [
      r.tenant_id,
      { tenantRps: r.tenant_rps, tenantBurst: r.tenant_burst, keyRps: r.key_rps, keyBurst: r.key_burst },
    ]),
  );
}
