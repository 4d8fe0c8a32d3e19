// Rate limits: a token bucket per API key (or signed-in user) and one per tenant, shared by every
// replica of the control plane, with no database round trip on a call's hot path.
//
// Design. Each bucket's truth is one row of rate_limit_bucket (rate-limit-store.ts), refilled at
// `rps` up to `burst` on the database's clock. A replica never admits a call on a token it has not
// taken from that row: it keeps a small local stash of leased tokens and spends them in memory.
// When its stash falls to half a lease it leases the next batch in the background (prefetch), so a
// steady caller under its limit finds tokens ready and never waits. Only a cold bucket (the first
// call of a key on this replica, or a burst that outran the prefetch) waits for one lease, shared by
// every call waiting on it; a lease that comes back short marks the bucket dry until the shared row
// has refilled a lease's worth, and calls meanwhile are refused locally, so a flood of refused calls
// costs one query per refill, not one per call.
//
// Bound. Tokens are conserved: every admitted call spent one token taken from the shared row, and
// the row never holds more than `burst`. Over any window of T seconds the calls admitted by all
// replicas together are at most what the row held at the start (<= burst), plus its refill
// (rps * T), plus the tokens the replicas held in their stashes at the start. A stash holds at most
// one and a half leases, and a lease is burst / 80 tokens (at least 1): with two replicas the excess
// over a single exact bucket is at most 2 * 1.5 * burst / 80 = 3.75 % of the burst, hence below
// 5 % of what one bucket admits in any window. The cost: up to a stash of tokens per replica may
// sit unspent (a replica that goes quiet keeps its stash for its next call), so the limiter errs on
// the side of admitting slightly less than the limit, never more.
//
// Scopes. The key bucket counts the calls of one API key (or one web user); the tenant bucket
// counts the calls of all the keys and users of one tenant, not of its descendants: each customer of
// a reseller has a bucket of its own, so one busy customer never starves its siblings. Defaults
// come from the config; a tenant's quota may override both (SetQuota, kept in tenant_rate_limit and
// held in memory here: a change is told to every replica through the cluster, like the auth
// cache's invalidations). A rate of 0 turns that limit off.
//
// Headers (IETF draft "RateLimit header fields for HTTP"): every answer carries RateLimit-Limit (the
// burst), RateLimit-Remaining (the tokens this replica believes are left: its stash plus the shared
// row's last known level, refilled since) and RateLimit-Reset (seconds until the bucket is full), of
// the bucket with the fewest tokens left, and RateLimit-Policy (`<burst>;w=<seconds to refill>`);
// a refused call also carries Retry-After.
import type { Kysely } from 'kysely';
import type { Principal } from '../auth/principal.js';
import type { ControlPlaneConfig } from '../config.js';
import { ResourceExhaustedError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database } from '../store/schema.js';
import {
  type Lease,
  leaseTokens,
  loadRateLimitOverrides,
  type RateLimitOverride,
} from './rate-limit-store.js';

export interface Limit {
  readonly rps: number;
  readonly burst: number;
}

export type RateLimitScope = 'key' | 'tenant';

/** A lease is this fraction of the burst (see the bound above). */
const LEASE_FRACTION = 1 / 80;
/** Buckets kept in memory; the least recently used go first (their stash with them). */
const MAX_BUCKETS = 50_000;

export function leaseSize(limit: Limit): number {
  return Math.max(1, Math.floor(limit.burst * LEASE_FRACTION));
}

class Bucket {
  /** Leased tokens this replica may spend. */
  tokens = 0;
  /** The shared row's level at the last lease, and when (ms), for the headers. */
  shared: number;
  sharedAt = 0;
  /** Until when (ms) the shared row is dry: calls are refused without asking it. */
  dryUntil = 0;
  waiting = 0;
  pending: Promise<void> | undefined;

  constructor(
    readonly scope: RateLimitScope,
    readonly id: string,
    public limit: Limit,
  ) {
    this.shared = limit.burst;
  }

  get key(): string {
    return `${this.scope}:${this.id}`;
  }

  remaining(nowMs: number): number {
    const refilled = this.shared + (this.limit.rps * (nowMs - this.sharedAt)) / 1000;
    // The stash was taken from the shared level: together they never hold more than a full bucket.
    return Math.max(
      0,
      Math.min(this.limit.burst, Math.floor(this.tokens + Math.min(this.limit.burst, refilled))),
    );
  }
}

export interface RateLimitDecision {
  /** The RateLimit-* headers (and Retry-After when refused) for the answer. */
  readonly headers: Readonly<Record<string, string>>;
  /** Set when the call is refused. */
  readonly refusal?: ResourceExhaustedError | undefined;
}

export interface RateLimiterOptions {
  db: Kysely<Database>;
  config: Pick<
    ControlPlaneConfig,
    'rateLimitKeyRps' | 'rateLimitKeyBurst' | 'rateLimitTenantRps' | 'rateLimitTenantBurst'
  >;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** Tells the other replicas that overrides changed (absent in a single process). */
  publish?: (() => Promise<void>) | undefined;
  /** Milliseconds now (default Date.now). */
  now?: () => number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  #overrides = new Map<string, RateLimitOverride>();
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(private readonly options: RateLimiterOptions) {
    this.#log = options.logger.child({ module: 'rate-limit' });
    this.#now = options.now ?? Date.now;
  }

  /** Reads the overrides (at start, and when another replica says they changed). */
  async reload(): Promise<void> {
    this.#overrides = await loadRateLimitOverrides(this.options.db);
    for (const bucket of this.#buckets.values()) {
      const tenant = bucket.scope === 'tenant' ? bucket.id : undefined;
      if (tenant) bucket.limit = this.limitOf('tenant', tenant);
    }
    // Key buckets take their tenant's limit on their next call (keyBucket()).
  }

  /** Overrides were written here: reload, then tell every other replica. */
  async changed(): Promise<void> {
    await this.reload();
    await this.options
      .publish?.()
      .catch((err: unknown) =>
        this.#log.error({ err }, 'telling the other replicas of a rate limit change failed'),
      );
  }

  /** The limit in force for a tenant's own bucket, or for each key of the tenant. */
  limitOf(scope: RateLimitScope, tenantId: string): Limit {
    const o = this.#overrides.get(tenantId);
    const { config } = this.options;
    return scope === 'tenant'
      ? {
          rps: o?.tenantRps ?? config.rateLimitTenantRps,
          burst: o?.tenantBurst ?? config.rateLimitTenantBurst,
        }
      : { rps: o?.keyRps ?? config.rateLimitKeyRps, burst: o?.keyBurst ?? config.rateLimitKeyBurst };
  }

  #bucket(scope: RateLimitScope, id: string, limit: Limit): Bucket {
    const key = `${scope}:${id}`;
    let bucket = this.#buckets.get(key);
    if (bucket) {
      this.#buckets.delete(key);
      bucket.limit = limit;
    } else {
      bucket = new Bucket(scope, id, limit);
      while (this.#buckets.size >= MAX_BUCKETS) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest === undefined) break;
        this.#buckets.delete(oldest);
      }
    }
    this.#buckets.set(key, bucket);
    return bucket;
  }

  /**
   * Admits or refuses one call of `principal`. Synchronous (a decision in hand) when the stashes
   * decide; a promise only when a bucket is cold and waits for its first lease.
   */
  admit(principal: Principal): RateLimitDecision | Promise<RateLimitDecision> {
    const buckets: Bucket[] = [];
    const tenantLimit = this.limitOf('tenant', principal.tenantId);
    if (tenantLimit.rps > 0) buckets.push(this.#bucket('tenant', principal.tenantId, tenantLimit));
    const keyLimit = this.limitOf('key', principal.tenantId);
    if (keyLimit.rps > 0) buckets.push(this.#bucket('key', principal.actor, keyLimit));
    if (buckets.length === 0) return { headers: {} };
    const cold = (nowMs: number) => buckets.filter((b) => b.tokens < 1 && nowMs >= b.dryUntil);
    if (cold(this.#now()).length === 0) return this.#decide(buckets, this.#now());
    return (async () => {
      // A lease shared with calls that came first may run out before this one's turn: lease again
      // while the shared row still had tokens (a short lease marks the bucket dry and ends this).
      for (let attempt = 0; attempt < 3; attempt++) {
        const waiting = cold(this.#now());
        if (waiting.length === 0) break;
        await Promise.all(waiting.map((b) => this.#fill(b)));
      }
      return this.#decide(buckets, this.#now());
    })();
  }

  #decide(buckets: Bucket[], nowMs: number): RateLimitDecision {
    const short = buckets.find((b) => b.tokens < 1);
    if (short) {
      this.options.metrics?.rateLimitRefusals.inc({ scope: short.scope });
      const retryMs = Math.max(short.dryUntil - nowMs, 1000 / short.limit.rps);
      const retryAfter = Math.max(1, Math.ceil(retryMs / 1000));
      const { rps, burst } = short.limit;
      const who =
        short.scope === 'key' ? `API key ${JSON.stringify(short.id)}` : `tenant ${JSON.stringify(short.id)}`;
      return {
        headers: { ...this.#headers(short, nowMs, retryAfter), 'retry-after': String(retryAfter) },
        refusal: new ResourceExhaustedError(
          `rate limit of ${who} exceeded: ${rps} calls per second, burst ${burst}; retry after ${retryAfter} s`,
        ),
      };
    }
    for (const b of buckets) {
      b.tokens -= 1;
      if (b.tokens <= leaseSize(b.limit) / 2 && !b.pending && nowMs >= b.dryUntil) void this.#fill(b, false);
    }
    let tightest = buckets[0] as Bucket;
    for (const b of buckets) if (b.remaining(nowMs) < tightest.remaining(nowMs)) tightest = b;
    return { headers: this.#headers(tightest, nowMs) };
  }

  #headers(b: Bucket, nowMs: number, resetSeconds?: number): Record<string, string> {
    const { rps, burst } = b.limit;
    const remaining = b.remaining(nowMs);
    const reset = resetSeconds ?? Math.ceil((burst - Math.min(burst, remaining)) / rps);
    return {
      'ratelimit-limit': String(burst),
      'ratelimit-remaining': String(remaining),
      'ratelimit-reset': String(reset),
      'ratelimit-policy': `${burst};w=${Math.max(1, Math.ceil(burst / rps))}`,
    };
  }

  /**
   * Leases tokens into the bucket's stash; `waiter` counts the caller among those waiting, so the
   * lease covers them all. One lease per bucket at a time: later callers share it.
   */
  async #fill(b: Bucket, waiter = true): Promise<void> {
    if (waiter) b.waiting++;
    try {
      if (!b.pending) {
        const want = Math.max(leaseSize(b.limit), waiter ? b.waiting : 0);
        b.pending = this.#lease(b, want).finally(() => {
          b.pending = undefined;
        });
      }
      await b.pending;
    } finally {
      if (waiter) b.waiting--;
    }
  }

  async #lease(b: Bucket, want: number): Promise<void> {
    const limit = b.limit;
    let lease: Lease;
    try {
      this.options.metrics?.rateLimitLeases.inc();
      lease = await leaseTokens(this.options.db, b.key, limit, want);
    } catch (err) {
      // The database is out of reach: the call fails on its own queries soon enough; the limiter
      // does not add a refusal of its own. Nothing is stashed, so the next call asks again.
      this.#log.warn({ err, bucket: b.key }, 'rate limit lease failed: calls admitted without a token');
      b.tokens += Math.max(1, b.waiting);
      return;
    }
    const nowMs = this.#now();
    b.tokens += lease.granted;
    b.shared = lease.left;
    b.sharedAt = nowMs;
    // Short: the shared row is dry until a lease's worth has refilled.
    b.dryUntil = lease.granted < want ? nowMs + ((leaseSize(limit) - lease.left) / limit.rps) * 1000 : 0;
  }
}
