// The one placement entry point of a replica. Creates, drain moves and every other plan that places
// devices go through submit(): plans arriving together are gathered for a moment and committed in
// one transaction (group commit), each in a savepoint of its own, so each caller still gets its own
// result, its own idempotency and its own error while the common single-device create costs a
// share of one commit instead of a whole one. Groups run one at a time, so this replica's plans
// never race each other for the same hosts, and each group places on the replica's one FleetCache,
// patched with every plan it commits.
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Clock } from '../clock.js';
import { DomainError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Database } from '../store/schema.js';
import { QuotaExceededError } from '../tenants/admission.js';
import { type AppliedPlan, applyPlan } from './applier.js';
import { FleetCache } from './fleet-cache.js';
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
  /** Jobs with the same key never share a group (e.g. tenant + idempotency key). */
  readonly key?: string | undefined;
}

export interface PlannerOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Called after a commit for every host whose desired device set changed. */
  readonly desiredChanged: (hostId: string) => void;
  /** How long the first job of an idle planner waits for company (default 1 ms). */
  readonly gatherMs?: number;
  /** Most jobs per group (default 64). */
  readonly maxGroup?: number;
}

interface Queued {
  readonly job: PlanJob<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type Outcome = { ok: true; value: unknown; applied: AppliedPlan[] } | { ok: false; error: unknown };

/** The domain refused the job: it fails alone and the group goes on. */
function isRefusal(error: unknown): boolean {
  if (isRetryableConflict(error)) return false;
  return error instanceof DomainError || (error instanceof Error && error.name === 'InvalidArgumentError');
}

export class Planner {
  readonly fleet: FleetCache;
  #queue: Queued[] = [];
  /** The drain loop while it runs; cleared in the same tick it finds the queue empty. */
  #running: Promise<void> | undefined;
  #closed = false;
  readonly #log: Logger;

  constructor(private readonly options: PlannerOptions) {
    this.fleet = new FleetCache(options.db);
    this.#log = options.logger.child({ module: 'planner' });
  }

  /** Queues the job for the next group and resolves with its result once the group committed. */
  submit<T>(job: PlanJob<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('planner closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ job, resolve: resolve as (value: unknown) => void, reject });
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
      this.fleet.patch(plan.hosts);
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

  /** Finishes the queued jobs and refuses new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
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
        // Read outside the transaction: see FleetCache.
        await this.fleet.refresh();
        outcomes = await this.#commit(group);
      } catch (error) {
        this.fleet.invalidate();
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
    const max = this.options.maxGroup ?? 64;
    const group: Queued[] = [];
    const keys = new Set<string>();
    const rest: Queued[] = [];
    for (const q of this.#queue) {
      const key = q.job.key;
      if (group.length >= max || (key !== undefined && keys.has(key))) rest.push(q);
      else {
        if (key !== undefined) keys.add(key);
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
        return await this.#once(group);
      } catch (error) {
        this.fleet.invalidate();
        if (attempt >= 5 || !isRetryableConflict(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
      }
    }
  }

  async #once(group: readonly Queued[]): Promise<Outcome[]> {
    const { db, clock } = this.options;
    return db.transaction().execute(async (trx) => {
      const outcomes: Outcome[] = [];
      for (const [i, q] of group.entries()) {
        const savepoint = sql.raw(`job_${i}`);
        await sql`savepoint ${savepoint}`.execute(trx);
        const applied: AppliedPlan[] = [];
        const now = clock.now();
        try {
          const value = await q.job.run({
            trx,
            now,
            apply: async (plan) => {
              const result = await applyPlan(trx, plan, { now, fleet: this.fleet });
              applied.push(result);
              return result;
            },
          });
          await sql`release savepoint ${savepoint}`.execute(trx);
          // The next job of the group places on the fleet as this one leaves it.
          for (const a of applied) this.fleet.patch(a.hosts);
          outcomes.push({ ok: true, value, applied });
        } catch (error) {
          if (!isRefusal(error)) throw error;
          await sql`rollback to savepoint ${savepoint}`.execute(trx);
          outcomes.push({ ok: false, error });
        }
      }
      return outcomes;
    });
  }
}
