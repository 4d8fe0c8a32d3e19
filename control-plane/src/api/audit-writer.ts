// The API's audit rows, written beside the calls rather than inside them: a call records its row
// and answers at once, and a single writer per replica inserts whatever rows have queued meanwhile
// in one statement, in the order the calls recorded them. Under load that is one insert per batch
// instead of one per call, and no response waits for a write that is not part of its own
// transaction. The rows still waiting are written before the process stops (close()); a crash
// loses at most the rows of the batch in flight. When the database falls behind, recording waits
// once the queue holds maxQueued rows, so a slow database slows callers rather than filling memory.
import type { Insertable, Kysely } from 'kysely';
import type { Logger } from '../logger.js';
import type { AuditLogTable, Database } from '../store/schema.js';

export type AuditRow = Insertable<AuditLogTable>;

export interface AuditWriterOptions {
  db: Kysely<Database>;
  logger: Logger;
  /** Rows queued before record() makes its caller wait (default 10,000). */
  maxQueued?: number;
  /** Rows per insert statement (default 500). */
  batchRows?: number;
}

export class AuditWriter {
  readonly #db: Kysely<Database>;
  readonly #log: Logger;
  readonly #maxQueued: number;
  readonly #batchRows: number;
  #queue: AuditRow[] = [];
  #writing: Promise<void> | undefined;

  constructor(options: AuditWriterOptions) {
    this.#db = options.db;
    this.#log = options.logger.child({ module: 'audit' });
    this.#maxQueued = options.maxQueued ?? 10_000;
    this.#batchRows = options.batchRows ?? 500;
  }

  /** Queues a row; resolves at once unless the queue is full, then once the writer has caught up. */
  record(row: AuditRow): Promise<void> | undefined {
    this.#queue.push(row);
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
        await this.#db
          .insertInto('audit_log')
          .values(batch)
          .execute()
          .catch((err: unknown) =>
            this.#log.error(
              { err, rows: batch.length, methods: [...new Set(batch.map((r) => r.method))] },
              'audit write failed',
            ),
          );
      }
    } finally {
      this.#writing = undefined;
    }
  }
}
