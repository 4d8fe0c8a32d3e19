// The one placement entry point of a replica. Creates, drain moves and every other plan that places
// devices go through it: what arrives together is gathered for a moment and committed in one
// transaction (group commit). Plan requests (creates) are applied together by the applier: one
// key claim, one quota pass, one placement, one lock round and one write for the whole group, while
// each keeps its own idempotency key, its own all-or-nothing plan and its own error. Jobs (drain
// moves) run one after another in the same transaction, each in a savepoint of its own. Groups run
// one at a time, so this replica's plans never race each other for hosts, on the replica's one
// fleet view (FleetCache): read whole once, then kept in step by the rows each plan writes and by
// the host table's change feed, never read whole per plan.
import { type Kysely, sql, type Transaction } from 'kysely';
import { claimKeys, type IdempotencyScope, releaseKeys, saveResponses } from '../api/idempotency.js';
import type { Clock } from '../clock.js';
import { DomainError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database } from '../store/schema.js';
import { QUOTA_DIMENSIONS, QuotaExceededError } from '../tenants/admission.js';
import { type AppliedPlan, applyPlan, applyPlans } from './applier.js';
import { FleetCache } from './fleet-cache.js';
import type { FleetFeed } from './fleet-feed.js';
import type { Plan } from './plan.js';
import { isRetryableConflict } from './retry.js';

/** What a job gets: the group's transaction and a way to apply plans in it. */
export interface JobContext {
  readonly trx: Transaction<Database>;
  readonly now: Date;
  apply(plan: Plan): Promise<AppliedPlan>;
}

export interface PlanJob<T> {
  /**
   * Builds and applies the job's plans inside the group's transaction. May run more than once (the
   * whole group runs again after a deadlock), so it must do nothing but database work.
   */
  run(context: JobContext): Promise<T>;
  /** Jobs with the same key never share a group. */
  readonly key?: string | undefined;
}

/** What a plan request's preparation gets. */
export interface PrepareContext {
  readonly trx: Transaction<Database>;
  readonly now: Date;
  /** A read shared by the group's requests (e.g. the images they name), made once. */
  once<V>(key: string, load: () => Promise<V>): Promise<V>;
}

/** A request that becomes one plan: validated, applied with the group's others, answered alone. */
export interface PlanRequest<T> {
  /** Its idempotency key (claimed with the group's others) and how its response is stored. */
  readonly idempotency?:
    | {
        readonly scope: IdempotencyScope;
        readonly save: (value: T) => unknown;
        readonly load: (saved: unknown) => T;
      }
    | undefined;
  /** Reads and validates; returns the plan or throws to refuse this request alone. Writes nothing. */
  prepare(context: PrepareContext): Promise<Plan>;
  /** The answer once the plan is applied. */
  answer(applied: AppliedPlan): T;
}

export interface PlannerOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Called after a commit for every host whose desired device set changed. */
  readonly desiredChanged: (hostId: string) => void;
  /** Changes to host rows made by anyone (fleet-feed.ts): what keeps the fleet view current. */
  readonly feed: FleetFeed;
  /** How long the first item of an idle planner waits for company (default 1 ms). */
  readonly gatherMs?: number;
  /** Most items per group (default 128). */
  readonly maxGroup?: number;
}

type Queued =
  | {
      kind: 'job';
      job: PlanJob<unknown>;
      key: string | undefined;
      resolve(v: unknown): void;
      reject(e: unknown): void;
    }
  | {
      kind: 'plan';
      request: PlanRequest<unknown>;
      key: string | undefined;
      resolve(v: unknown): void;
      reject(e: unknown): void;
    };

type Outcome = { ok: true; value: unknown; applied: AppliedPlan[] } | { ok: false; error: unknown };

/** The domain refused the item: it fails alone and the group goes on. */
function isRefusal(error: unknown): boolean {
  if (isRetryableConflict(error)) return false;
  return error instanceof DomainError || (error instanceof Error && error.name === 'InvalidArgumentError');
}

function scopeKey(scope: IdempotencyScope): string {
  return JSON.stringify([scope.tenantId, scope.method, scope.key]);
}

export class Planner {
  readonly fleet: FleetCache;
  #queue: Queued[] = [];
  /** The drain loop while it runs; cleared in the same tick it finds the queue empty. */
  #running: Promise<void> | undefined;
  #closed = false;
  readonly #log: Logger;

  constructor(private readonly options: PlannerOptions) {
    // Each dimension exported at 0 from the start, so the first refusal shows as an increase.
    for (const dimension of QUOTA_DIMENSIONS) options.metrics.quotaRejections.inc({ dimension }, 0);
    this.fleet = new FleetCache({
      db: options.db,
      feed: options.feed,
      logger: options.logger,
      metrics: options.metrics,
    });
    this.#log = options.logger.child({ module: 'planner' });
  }

  /** Queues a job for the next group and resolves with its result once the group committed. */
  submit<T>(job: PlanJob<T>): Promise<T> {
    return this.#enqueue((resolve, reject) => ({ kind: 'job', job, key: job.key, resolve, reject }));
  }

  /** Queues a plan request for the next group; resolves with its answer once the group committed. */
  plan<T>(request: PlanRequest<T>): Promise<T> {
    const scope = request.idempotency?.scope;
    return this.#enqueue((resolve, reject) => ({
      kind: 'plan',
      request: request as PlanRequest<unknown>,
      key: scope?.key ? scopeKey(scope) : undefined,
      resolve,
      reject,
    }));
  }

  #enqueue<T>(make: (resolve: (v: unknown) => void, reject: (e: unknown) => void) => Queued): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('planner closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push(make(resolve as (v: unknown) => void, reject));
      this.#running ??= this.#drain();
    });
  }

  /**
   * For a plan applied in a caller's own transaction (a deletion's release, a start's admission):
   * call once that transaction committed.
   */
  settle(applied: AppliedPlan | readonly AppliedPlan[]): void {
    const list: readonly AppliedPlan[] = Array.isArray(applied) ? applied : [applied as AppliedPlan];
    for (const plan of list) {
      this.fleet.apply(plan.hosts);
      for (const hostId of plan.desiredChanged) {
        try {
          this.options.desiredChanged(hostId);
        } catch (err) {
          // The change is committed; the agent converges on its next full sync anyway.
          this.#log.warn({ err, hostId }, 'desiredChanged failed');
        }
      }
    }
  }

  /** Finishes the queued items and refuses new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
    await this.fleet.close();
  }

  async #drain(): Promise<void> {
    const gatherMs = this.options.gatherMs ?? 1;
    if (gatherMs > 0) await new Promise((resolve) => setTimeout(resolve, gatherMs));
    for (;;) {
      if (this.#queue.length === 0) {
        this.#running = undefined;
        return;
      }
      const group = this.#take();
      this.options.metrics.planGroups.observe(group.length);
      let outcomes: Outcome[];
      try {
        outcomes = await this.#commit(group);
      } catch (error) {
        for (const q of group) q.reject(error);
        continue;
      }
      outcomes.forEach((outcome, i) => {
        const q = group[i];
        if (!q) return;
        if (outcome.ok) {
          this.settle(outcome.applied);
          q.resolve(outcome.value);
        } else {
          if (outcome.error instanceof QuotaExceededError) {
            this.options.metrics.quotaRejections.inc({ dimension: outcome.error.dimension });
          }
          q.reject(outcome.error);
        }
      });
    }
  }

  #take(): Queued[] {
    const max = this.options.maxGroup ?? 128;
    const group: Queued[] = [];
    const keys = new Set<string>();
    const rest: Queued[] = [];
    for (const q of this.#queue) {
      if (group.length >= max || (q.key !== undefined && keys.has(q.key))) rest.push(q);
      else {
        if (q.key !== undefined) keys.add(q.key);
        group.push(q);
      }
    }
    this.#queue = rest;
    return group;
  }

  /** Runs the group in one transaction; a deadlock victim runs again whole (up to 5 times). */
  async #commit(group: readonly Queued[]): Promise<Outcome[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Outside the transaction: a first read (or one after a gap) of the whole fleet.
        await this.fleet.ready();
        const outcomes = await this.options.db.transaction().execute((trx) => this.#once(trx, group));
        this.fleet.committed();
        return outcomes;
      } catch (error) {
        this.fleet.rolledBack();
        if (attempt >= 5 || !isRetryableConflict(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
      }
    }
  }

  async #once(trx: Transaction<Database>, group: readonly Queued[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(group.length);
    const plans: { at: number; request: PlanRequest<unknown> }[] = [];
    group.forEach((q, at) => {
      if (q.kind === 'plan') plans.push({ at, request: q.request });
    });
    await this.#plans(trx, plans, outcomes);
    for (const [at, q] of group.entries()) {
      if (q.kind === 'job') outcomes[at] = await this.#job(trx, at, q.job);
    }
    return outcomes;
  }

  /** The group's plan requests, applied together. */
  async #plans(
    trx: Transaction<Database>,
    items: readonly { at: number; request: PlanRequest<unknown> }[],
    outcomes: Outcome[],
  ): Promise<void> {
    if (items.length === 0) return;
    const now = this.options.clock.now();
    const keyed = items.filter((p) => p.request.idempotency?.scope.key);
    const claims = await claimKeys(
      trx,
      keyed.map((p) => p.request.idempotency?.scope as IdempotencyScope),
    );
    const claimed: { at: number; request: PlanRequest<unknown> }[] = [];
    keyed.forEach((p, k) => {
      const claim = claims[k];
      if (claim instanceof Error) outcomes[p.at] = { ok: false, error: claim };
      else if (claim && !claim.claimed) {
        outcomes[p.at] = { ok: true, value: p.request.idempotency?.load(claim.saved), applied: [] };
      } else claimed.push(p);
    });
    const memo = new Map<string, Promise<unknown>>();
    const context: PrepareContext = {
      trx,
      now,
      once: <V>(key: string, load: () => Promise<V>) => {
        let value = memo.get(key);
        if (!value) {
          value = load();
          memo.set(key, value);
        }
        return value as Promise<V>;
      },
    };
    const ready: { at: number; request: PlanRequest<unknown>; plan: Plan }[] = [];
    for (const p of items) {
      if (outcomes[p.at]) continue;
      try {
        ready.push({ ...p, plan: await p.request.prepare(context) });
      } catch (error) {
        if (!isRefusal(error)) throw error;
        outcomes[p.at] = { ok: false, error };
      }
    }
    const applied = await applyPlans(
      trx,
      ready.map((r) => r.plan),
      { now, fleet: this.fleet },
    );
    const saves: { scope: IdempotencyScope; response: unknown }[] = [];
    ready.forEach((r, k) => {
      const result = applied[k];
      if (!result) return;
      if (!result.ok) {
        outcomes[r.at] = { ok: false, error: result.error };
        return;
      }
      const value = r.request.answer(result.applied);
      const idempotency = r.request.idempotency;
      if (idempotency?.scope.key) saves.push({ scope: idempotency.scope, response: idempotency.save(value) });
      outcomes[r.at] = { ok: true, value, applied: [result.applied] };
    });
    await saveResponses(trx, saves);
    // A refused request leaves its key free: the same request may be retried as it is.
    await releaseKeys(
      trx,
      claimed.filter((p) => !outcomes[p.at]?.ok).map((p) => p.request.idempotency?.scope as IdempotencyScope),
    );
  }

  /** One job in a savepoint of its own. */
  async #job(trx: Transaction<Database>, at: number, job: PlanJob<unknown>): Promise<Outcome> {
    const savepoint = sql.raw(`job_${at}`);
    await sql`savepoint ${savepoint}`.execute(trx);
    const applied: AppliedPlan[] = [];
    const now = this.options.clock.now();
    try {
      const value = await job.run({
        trx,
        now,
        apply: async (plan) => {
          const result = await applyPlan(trx, plan, { now, fleet: this.fleet });
          applied.push(result);
          return result;
        },
      });
      await sql`release savepoint ${savepoint}`.execute(trx);
      return { ok: true, value, applied };
    } catch (error) {
      if (!isRefusal(error)) throw error;
      await sql`rollback to savepoint ${savepoint}`.execute(trx);
      // Rows it wrote went onto the fleet view; rolled back, they are gone from the database.
      if (applied.length > 0) this.fleet.rolledBack();
      return { ok: false, error };
    }
  }
}
