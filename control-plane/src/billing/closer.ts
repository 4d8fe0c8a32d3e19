// The statement closer: on the leader replica, once a month is over (and a grace for late usage
// reports has passed), closes that month's statement of every tenant with a price book in force
// during it. Closing is idempotent (one statement per tenant and month), so a pass that overlaps a
// new leader's, or an API close, stores nothing twice.
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';
import { closeMonth, type Month, monthOf } from './statements.js';

export interface StatementCloserOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Whether this replica leads now (only the leader closes). */
  readonly isLeader: () => boolean;
  /** How often a pass runs; default 10 minutes. */
  readonly intervalMs?: number | undefined;
  /**
   * How long after a month ends its statements wait, for usage the agents report late (they spool
   * samples while the control plane is unreachable); default 6 hours.
   */
  readonly graceMs?: number | undefined;
}

export class StatementCloser {
  readonly #options: StatementCloserOptions;
  readonly #log: Logger;
  readonly #graceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;
  /** The last month a pass closed completely, so later passes skip the query. */
  #closed: string | undefined;

  constructor(options: StatementCloserOptions) {
    this.#options = options;
    this.#log = options.logger.child({ module: 'statement-closer' });
    this.#graceMs = options.graceMs ?? 6 * 60 * 60_000;
  }

  start(): void {
    this.#timer = setInterval(
      () => {
        if (!this.#running) this.#running = this.pass().finally(() => (this.#running = undefined));
      },
      this.#options.intervalMs ?? 10 * 60_000,
    );
    this.#timer.unref();
  }

  /** The month a pass at `now` closes: the previous one once its grace is over. */
  dueMonth(now: Date): Month | undefined {
    const previous = monthOf(new Date(monthOf(now).start.getTime() - 1));
    return now.getTime() >= previous.end.getTime() + this.#graceMs ? previous : undefined;
  }

  /** One pass: closes the due month's statements if this replica leads; returns how many it stored. */
  async pass(): Promise<number> {
    try {
      if (!this.#options.isLeader()) return 0;
      const month = this.dueMonth(this.#options.clock.now());
      if (!month || month.text === this.#closed) return 0;
      const started = Date.now();
      const closed = await closeMonth(this.#options.db, month, this.#options.clock);
      this.#closed = month.text;
      if (closed > 0)
        this.#log.info({ month: month.text, closed, ms: Date.now() - started }, 'statements closed');
      return closed;
    } catch (err) {
      this.#log.error({ err }, 'statement close pass failed');
      return 0;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
