// Monthly partitions of the raw usage_sample table: made ahead (by the intake for the months its
// samples fall in, and by the leader's maintenance for this month and the next) and dropped whole
// once older than the retention. The rollups (usage/rollups.ts) are never dropped: queries over a
// dropped month still answer from them.
import { type Kysely, sql } from 'kysely';
import type { Logger } from '../logger.js';
import type { Database } from '../store/schema.js';

/** Serialises partition DDL across replicas (transaction-level, so PGlite's shared session is fine). */
const PARTITION_LOCK_KEY = 0x75736167;
const NAME = /^usage_sample_p(\d{4})(\d{2})$/;

export function monthStart(time: Date | number): Date {
  const d = new Date(time);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

function addMonths(month: Date, n: number): Date {
  return new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + n, 1));
}

export function partitionName(month: Date): string {
  return `usage_sample_p${month.getUTCFullYear()}${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

// Months known to have a partition, per database handle: the intake checks this before each report
// and touches the catalog only for a month it has not seen.
const known = new WeakMap<object, Set<number>>();

function knownFor(db: Kysely<Database>): Set<number> {
  let set = known.get(db);
  if (!set) {
    set = new Set();
    known.set(db, set);
  }
  return set;
}

/** Forgets what this process knows of partitions (another replica may have dropped some). */
export function forgetUsagePartitions(db: Kysely<Database>): void {
  known.delete(db);
}

/** Makes sure the raw table has a partition for the month of each time. */
export async function ensureUsagePartitions(
  db: Kysely<Database>,
  times: Iterable<Date | number>,
): Promise<void> {
  const seen = knownFor(db);
  const missing = [...new Set([...times].map((t) => monthStart(t).getTime()))].filter((m) => !seen.has(m));
  if (missing.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${PARTITION_LOCK_KEY})`.execute(trx);
    for (const m of missing.sort((a, b) => a - b)) {
      const month = new Date(m);
      await sql`create table if not exists ${sql.table(partitionName(month))} partition of usage_sample
        for values from (${sql.lit(month.toISOString())}) to (${sql.lit(addMonths(month, 1).toISOString())})`.execute(
        trx,
      );
    }
  });
  for (const m of missing) seen.add(m);
}

/** The raw partitions, oldest first. */
export async function usagePartitions(db: Kysely<Database>): Promise<{ name: string; month: Date }[]> {
  const rows = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_class p on p.oid = i.inhparent
    where p.relname = 'usage_sample'`.execute(db);
  const out = [];
  for (const { name } of rows.rows) {
    const m = NAME.exec(name);
    if (m) out.push({ name, month: new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)) });
  }
  return out.sort((a, b) => a.month.getTime() - b.month.getTime());
}

/**
 * Drops the raw partitions of months that ended more than `retentionMonths` whole months before
 * the current one: with 13 on 2026-12-15, November 2025 (and older) goes, December 2025 stays.
 * 0 keeps everything. Returns the names dropped.
 */
export async function dropExpiredUsagePartitions(
  db: Kysely<Database>,
  { now, retentionMonths }: { now: Date; retentionMonths: number },
): Promise<string[]> {
  if (retentionMonths <= 0) return [];
  const horizon = addMonths(monthStart(now), -retentionMonths).getTime();
  const expired = (await usagePartitions(db)).filter((p) => addMonths(p.month, 1).getTime() <= horizon);
  if (expired.length === 0) return [];
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${PARTITION_LOCK_KEY})`.execute(trx);
    for (const p of expired) await sql`drop table if exists ${sql.table(p.name)}`.execute(trx);
  });
  const seen = knownFor(db);
  for (const p of expired) seen.delete(p.month.getTime());
  return expired.map((p) => p.name);
}

export interface UsageMaintenanceOptions {
  readonly db: Kysely<Database>;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Only the leader replica drops partitions. */
  readonly isLeader: () => boolean;
  /** CPHONE_USAGE_RETENTION_MONTHS; 0 keeps raw rows forever. */
  readonly retentionMonths: number;
  /** Default one hour. */
  readonly intervalMs?: number;
}

/** The leader's periodic pass: this month's and next month's partitions made, expired ones dropped. */
export class UsageMaintenance {
  readonly #options: UsageMaintenanceOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(options: UsageMaintenanceOptions) {
    this.#options = options;
  }

  start(): void {
    const tick = () => {
      this.#running = this.pass().then(
        () => undefined,
        (err: unknown) => this.#options.logger.warn({ err }, 'usage maintenance pass failed'),
      );
    };
    tick();
    this.#timer = setInterval(tick, this.#options.intervalMs ?? 3_600_000);
    this.#timer.unref();
  }

  async pass(): Promise<string[]> {
    const { db, now, isLeader, retentionMonths, logger } = this.#options;
    const month = monthStart(now());
    await ensureUsagePartitions(db, [month, addMonths(month, 1)]);
    if (!isLeader()) return [];
    const dropped = await dropExpiredUsagePartitions(db, { now: now(), retentionMonths });
    if (dropped.length > 0) logger.info({ dropped, retentionMonths }, 'usage partitions dropped');
    return dropped;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
