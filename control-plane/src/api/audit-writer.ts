// The API's audit rows, written beside the calls rather than inside them: a call records its row
// and answers at once, and a single writer per replica inserts whatever rows have queued meanwhile
// in one statement, in the order the calls recorded them. Under load that is one insert per batch
// instead of one per call, and no response waits for a write that is not part of its own
// transaction. The rows still waiting are written before the process stops (close()); a crash
// loses at most the rows of the batch in flight. When the database falls behind, recording waits
// once the queue holds maxQueued rows, so a slow database slows callers rather than filling memory.
// Rows nobody authenticated for (a flood of bad keys) and refusals of the rate limiter are
// droppable: past half the queue they are counted and dropped instead, so such a flood neither
// fills memory nor slows the callers that did authenticate.
// A row may leave its tenant to the writer (a target): the owner of the resource it names is looked
// up for the whole batch before the insert (audit/target-tenant.ts).
import type { Insertable, Kysely } from 'kysely';
import { type AuditTarget, resolveTargetTenants } from '../audit/target-tenant.js';
import type { Logger } from '../logger.js';
import type { AuditLogTable, Database } from '../store/schema.js';

export type AuditRow = Insertable<AuditLogTable>;

export interface RecordOptions {
  /** Set the row's tenant_id to the owner of this resource (else its hint, else its fallback). */
  target?: AuditTarget | undefined;
  /** Dropped (and counted) rather than queued once the queue is half full. */
  droppable?: boolean | undefined;
}

interface Queued {
  row: AuditRow;
  target: AuditTarget | undefined;
}

export interface AuditWriterOptions {
  db: Kysely<Database>;
  logger: Logger;
  /** Rows queued before record() makes its caller wait (default 10,000). */
  maxQueued?: number;
  /** Rows per insert statement (default 500). */
  batchRows?: number;
  /** Told of each droppable row dropped because the queue was half full. */
  onDrop?: (() => void) | undefined;
}

export class AuditWriter {
  readonly #db: Kysely<Database>;
  readonly #log: Logger;
  readonly #maxQueued: number;
  readonly #batchRows: number;
  readonly #onDrop: (() => void) | undefined;
  #queue: Queued[] = [];
  #writing: Promise<void> | undefined;
  #dropped = 0;

  constructor(options: AuditWriterOptions) {
    this.#db = options.db;
    this.#log = options.logger.child({ module: 'audit' });
    this.#maxQueued = options.maxQueued ?? 10_000;
    this.#batchRows = options.batchRows ?? 500;
    this.#onDrop = options.onDrop;
  }

  /** Droppable rows dropped so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Queues a row; resolves at once unless the queue is full, then once the writer has caught up. */
  record(row: AuditRow, options: RecordOptions = {}): Promise<void> | undefined {
    if (options.droppable && this.#queue.length * 2 >= this.#maxQueued) {
      if (this.#dropped++ % 1000 === 0)
        this.#log.warn({ dropped: this.#dropped, method: row.method }, 'audit queue half full: rows dropped');
      this.#onDrop?.();
      return undefined;
    }
    this.#queue.push({ row, target: options.target });
    this.#writing ??= this.#drain();
    return this.#queue.length >= this.#maxQueued ? this.flush() : undefined;
  }

  /** Resolves once every row recorded so far is written (or its failure logged). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #drain(): Promise<void> {
    // Let the calls of this turn of the event loop queue their rows first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#batchRows);
        await this.#write(batch).catch((err: unknown) =>
          this.#log.error(
            { err, rows: batch.length, methods: [...new Set(batch.map((q) => q.row.method))] },
            'audit write failed',
          ),
        );
      }
    } finally {
      this.#writing = undefined;
    }
  }

  async #write(batch: Queued[]): Promise<void> {
    const targeted = batch.filter((q) => q.target !== undefined);
    if (targeted.length > 0) {
      // A failed lookup keeps each row's own tenant_id (the fallback): the row is not lost.
      const tenants = await resolveTargetTenants(
        this.#db,
        targeted.map((q) => q.target as AuditTarget),
      ).catch((err: unknown): string[] => {
        this.#log.warn(
          { err, rows: targeted.length },
          'audit target lookup failed: rows filed under the actor',
        );
        return [];
      });
      targeted.forEach((q, k) => {
        q.row = { ...q.row, tenant_id: tenants[k] ?? q.row.tenant_id };
      });
    }
    await this.#db
      .insertInto('audit_log')
      .values(batch.map((q) => q.row))
      .execute();
  }
}
