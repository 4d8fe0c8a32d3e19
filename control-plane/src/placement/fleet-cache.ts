// The replica's fleet view kept current without reading the fleet: read whole once (when the
// replica starts, or at its first plan) and again only after a gap; from then on every change
// reaches it as a delta.
//
//  - This replica's own writes: the applier applies the host rows its ledger write returns, in the
//    transaction that wrote them (so the next plan of the group sees them), and the planner's
//    settle() applies the rows of plans other transactions committed.
//  - Everyone else's (other replicas' plans, agents' Hellos and disconnects, liveness, operators):
//    the host table's trigger sends 'u <change_seq> <host id>' when a scheduling column changes,
//    and the view re-reads only the rows it has not seen at that number, batched.
//  - A gap (the listening session was lost and replaced, a barrier unanswered, or a transaction
//    whose rows were applied rolled back) marks the view for a full read before the next plan.
//
// Staleness is safe: the applier re-checks the chosen hosts against their locked rows. Before a
// failure to place is final, the applier catches up: a barrier on the feed (every notice committed
// so far has arrived), then the rows still to re-read, read in its transaction.
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type SchedulingRow, selectSchedulingRows } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import type { FleetFeed } from './fleet-feed.js';
import { FleetView, type Hold } from './fleet-view.js';
import { tenantDeviceCounts } from './host-input.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Why the whole fleet was read: the view's first read, or one of the gaps above. */
export type LoadReason = 'start' | 'gap' | 'unconfirmed' | 'rollback';

export interface FleetCacheOptions {
  readonly db: Kysely<Database>;
  readonly feed: FleetFeed;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
  /** How long a tenant's device counts (tenant spread) serve before they are read again (default 5000 ms). */
  readonly tenantTtlMs?: number | undefined;
  /** How long catchUp() waits for the feed's barrier before it reads the whole fleet (default 2000 ms). */
  readonly barrierTimeoutMs?: number | undefined;
}

type Pending =
  | { kind: 'rows'; rows: readonly SchedulingRow[] }
  | { kind: 'removed'; id: string; seq: number };

export class FleetCache {
  #view: FleetView | undefined;
  #gap: LoadReason | undefined;
  #subscribed: Promise<void> | undefined;
  #loading: Promise<void> | undefined;
  /** Changes that arrived while a full read was under way, replayed on the view it makes. */
  #during: Pending[] | undefined;
  /** Hosts noticed changed, with the change_seq to reach, not yet re-read. */
  readonly #stale = new Map<string, number>();
  #rereading: Promise<void> | undefined;
  #retryMs = 0;
  /** Rows written by a transaction still open were applied: its rollback is a gap. */
  #uncommitted = false;
  #closed = false;
  readonly #log: Logger;
  /** Full reads of the fleet, by reason: what the tests and the metric count. */
  readonly loads: Record<LoadReason, number> = { start: 0, gap: 0, unconfirmed: 0, rollback: 0 };
  /** Host rows re-read after a notice. */
  rereads = 0;
  /**
   * Milliseconds spent deciding on the view: placing, re-checking against the locked rows, and
   * applying the rows written (the applier reports them; database round trips not included).
   */
  decisionMs = 0;

  constructor(private readonly options: FleetCacheOptions) {
    this.#log = options.logger.child({ module: 'fleet-cache' });
  }

  /** The view; call ready() first. */
  get view(): FleetView {
    if (!this.#view) throw new Error('the fleet view is not loaded: call ready() first');
    return this.#view;
  }

  /** Reads the whole fleet if this is the first use or a gap was seen. Call outside any transaction. */
  async ready(): Promise<void> {
    const reason = this.#view ? this.#gap : 'start';
    if (reason === undefined) return;
    this.#loading ??= this.#load(this.options.db, reason).finally(() => {
      this.#loading = undefined;
    });
    await this.#loading;
  }

  /**
   * Applies host rows as they now are: committed ones (a plan's settle), or, with `uncommitted`,
   * ones the planner's open transaction wrote or read (its rollback then reloads the view).
   * `settled`: the holds of the placements these rows carry (FleetView.apply).
   */
  apply(
    rows: readonly SchedulingRow[],
    options: { uncommitted?: boolean; settled?: readonly Hold[] } = {},
  ): void {
    if (rows.length === 0 && !options.settled?.length) return;
    if (options.uncommitted) this.#uncommitted = true;
    this.#during?.push({ kind: 'rows', rows });
    try {
      this.#view?.apply(rows, options.settled);
    } catch (err) {
      // The caller's work is done (often committed): the view is what is wrong. Read it again.
      this.#log.error({ err }, 'fleet view update failed: the next plan reads the whole fleet');
      this.#gap ??= 'gap';
    }
  }

  /**
   * Brings the view up to everything committed before the call: waits for the feed's barrier, then
   * reads the rows still to re-read. In a transaction (the applier's, before a refusal is final)
   * pass it: the reads then see what it wrote too, and run on its connection (on PGlite a read on
   * the pool would wait for it to end). If the feed cannot confirm, reads the whole fleet instead.
   */
  async catchUp(db: Db = this.options.db): Promise<void> {
    if (!this.#view || this.#gap) {
      await this.#load(db, this.#gap ?? 'start');
      return;
    }
    try {
      await withTimeout(this.options.feed.barrier(), this.options.barrierTimeoutMs ?? 2000);
    } catch (err) {
      this.#log.warn({ err }, 'fleet feed unconfirmed: reading the whole fleet');
      await this.#load(db, 'unconfirmed');
      return;
    }
    const wanted = new Map(this.#stale);
    if (wanted.size === 0) return;
    const rows = await selectSchedulingRows(db, [...wanted.keys()]);
    this.apply(rows, { uncommitted: db !== this.options.db });
    this.#settleStale(wanted, rows);
  }

  /** Makes sure the tenants' device counts (tenant spread) are on the view and fresh enough. */
  async tenantCounts(db: Db, tenantIds: Iterable<string>): Promise<void> {
    const view = this.view;
    const ttl = this.options.tenantTtlMs ?? 5000;
    for (const tenantId of new Set(tenantIds)) {
      const at = view.tenantReadAt(tenantId);
      if (at !== undefined && performance.now() - at < ttl) continue;
      const counts = await tenantDeviceCounts(db, tenantId);
      view.setTenantCounts(tenantId, counts, performance.now());
    }
  }

  /** The applier spent `ms` deciding on the view (see decisionMs). */
  decided(ms: number): void {
    this.decisionMs += ms;
    this.options.metrics?.placementDecisionSeconds.inc(ms / 1000);
  }

  /** The planner's transaction committed: what it applied stands. */
  committed(): void {
    this.#uncommitted = false;
  }

  /** The planner's transaction (or a savepoint in it) rolled back. */
  rolledBack(): void {
    if (this.#uncommitted) this.#gap ??= 'rollback';
    this.#uncommitted = false;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#rereading;
    await this.options.feed.close();
  }

  #subscribe(): Promise<void> {
    this.#subscribed ??= this.options.feed.subscribe(
      (payload) => this.#notice(payload),
      () => {
        this.#log.warn('fleet feed gap: the next plan reads the whole fleet');
        this.#gap ??= 'gap';
      },
    );
    return this.#subscribed;
  }

  async #load(db: Db, reason: LoadReason): Promise<void> {
    // Listening before reading: a change committed after the read's snapshot is noticed.
    await this.#subscribe();
    this.#during = [];
    this.#stale.clear();
    this.#gap = undefined;
    try {
      const view = new FleetView(await selectSchedulingRows(db));
      for (const change of this.#during) {
        if (change.kind === 'rows') view.apply(change.rows);
        else view.remove(change.id, change.seq);
      }
      this.#view = view;
    } catch (error) {
      this.#gap ??= reason;
      throw error;
    } finally {
      this.#during = undefined;
    }
    if (db !== this.options.db) this.#uncommitted = true;
    this.loads[reason]++;
    this.options.metrics?.fleetViewLoads.inc({ reason });
    this.#log.info({ reason, hosts: this.#view.size }, 'fleet view read whole');
    if (this.#stale.size > 0) this.#scheduleReread();
  }

  #notice(payload: string): void {
    const first = payload.indexOf(' ');
    const second = payload.indexOf(' ', first + 1);
    const kind = payload.slice(0, first);
    const seq = Number(payload.slice(first + 1, second));
    const id = payload.slice(second + 1);
    if (first < 0 || second < 0 || !Number.isFinite(seq) || (kind !== 'u' && kind !== 'd')) {
      this.#log.warn({ payload }, 'fleet notice not understood');
      return;
    }
    if (kind === 'd') {
      this.#during?.push({ kind: 'removed', id, seq });
      this.#view?.remove(id, seq);
      this.#stale.delete(id);
      return;
    }
    // Known already (this replica wrote it, or read it newer): nothing to read.
    if (!this.#during && (this.#view?.seqOf(id) ?? -1) >= seq) return;
    this.#stale.set(id, Math.max(seq, this.#stale.get(id) ?? 0));
    this.#scheduleReread();
  }

  #scheduleReread(): void {
    if (this.#rereading || this.#closed) return;
    this.#rereading = this.#reread().finally(() => {
      this.#rereading = undefined;
      if (this.#stale.size > 0 && !this.#during && !this.#closed) {
        if (this.#retryMs > 0) setTimeout(() => this.#scheduleReread(), this.#retryMs).unref();
        else this.#scheduleReread();
      }
    });
  }

  async #reread(): Promise<void> {
    // Notices of one commit arrive together: let them all in before reading.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.#during || !this.#view || this.#stale.size === 0) return;
    const wanted = new Map(this.#stale);
    try {
      const rows = await selectSchedulingRows(this.options.db, [...wanted.keys()]);
      this.apply(rows);
      this.#settleStale(wanted, rows);
      this.#retryMs = 0;
    } catch (err) {
      this.#retryMs = Math.min(5000, Math.max(100, this.#retryMs * 2));
      this.#log.warn({ err, hosts: wanted.size, retryMs: this.#retryMs }, 'fleet re-read failed');
    }
  }

  /** Forgets the hosts read at (or past) the change noticed; a host gone is the 'd' notice's. */
  #settleStale(wanted: ReadonlyMap<string, number>, rows: readonly SchedulingRow[]): void {
    this.rereads += rows.length;
    this.options.metrics?.fleetViewRereads.inc(rows.length);
    const read = new Map(rows.map((r) => [r.id, r.change_seq]));
    for (const [id, seq] of wanted) {
      const now = this.#stale.get(id);
      if (now === undefined || now > seq) continue;
      if ((read.get(id) ?? Number.POSITIVE_INFINITY) >= seq) this.#stale.delete(id);
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
