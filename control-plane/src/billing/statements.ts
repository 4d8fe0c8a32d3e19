// Monthly statements: a tenant's month rated and stored once, never changed (the table refuses
// updates). A tenant's descendants are closed before it, so the customer charges on a reseller's
// statement are its customers' own statements.
import type { Kysely, Selectable } from 'kysely';
import type { Clock } from '../clock.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { newId } from '../ids.js';
import type { Database, StatementTable, StoredCustomer } from '../store/schema.js';
import { formatScaled, parseDecimal } from './money.js';
import { rateTenants, storedLine, subtrees } from './rate.js';
import { monthStart, nextMonth } from './rating.js';
import { onStatementClosed } from './statement-events.js';

export type StatementRow = Selectable<StatementTable>;

/** A calendar month in UTC. */
export interface Month {
  /** "YYYY-MM". */
  text: string;
  start: Date;
  end: Date;
}

/** Statements stored per transaction. */
const CHUNK = 200;

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

export function parseMonth(text: string, field = 'month'): Month {
  const match = MONTH.exec(text);
  if (!match || Number(match[1]) < 2000) {
    throw new InvalidArgumentError(field, text, 'must be a month "YYYY-MM" from 2000-01 on');
  }
  return monthOf(new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1)));
}

export function monthOf(t: Date): Month {
  const start = monthStart(t);
  return { text: start.toISOString().slice(0, 7), start, end: nextMonth(start) };
}

/** FAILED_PRECONDITION unless the month is over. */
export function requireOver(month: Month, clock: Clock): void {
  if (clock.now() < month.end) {
    throw new FailedPreconditionError(
      `month ${month.text} is not over (it ends at ${month.end.toISOString()}): its statement cannot be closed or read yet`,
    );
  }
}

export function statementOf(db: Kysely<Database>, tenantId: string, month: string) {
  return db
    .selectFrom('statement')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('month', '=', month)
    .executeTakeFirst();
}

/** Those of the tenants that have no statement for the month yet. */
async function unclosed(db: Kysely<Database>, tenantIds: readonly string[], month: Month) {
  const closed = new Set<string>();
  for (let i = 0; i < tenantIds.length; i += 1000) {
    const rows = await db
      .selectFrom('statement')
      .select('tenant_id')
      .where('month', '=', month.text)
      .where('tenant_id', 'in', tenantIds.slice(i, i + 1000))
      .execute();
    for (const r of rows) closed.add(r.tenant_id);
  }
  return tenantIds.filter((id) => !closed.has(id));
}

/**
 * Closes the month of each tenant that has a price book in force during it (the others are left
 * out), children before parents; returns the statements, one closed earlier included when a
 * concurrent close stored it first.
 */
export async function closeStatements(
  db: Kysely<Database>,
  month: Month,
  tenantIds: readonly string[],
  clock: Clock,
): Promise<Map<string, StatementRow>> {
  const ratings = await rateTenants(db, tenantIds, month.start, month.end);
  const trees = await subtrees(db, [...ratings.keys()]);
  // A child's subtree is smaller than its parent's: children first.
  const order = [...ratings.keys()].sort((a, b) => (trees.get(a)?.length ?? 0) - (trees.get(b)?.length ?? 0));
  const children = new Map<string, string[]>();
  for (let i = 0; i < order.length; i += 1000) {
    const rows = await db
      .selectFrom('tenant')
      .select(['id', 'parent_id', 'delete_time'])
      .where('parent_id', 'in', order.slice(i, i + 1000))
      .orderBy('id')
      .execute();
    for (const row of rows) {
      if (!row.parent_id) continue;
      const list = children.get(row.parent_id) ?? [];
      list.push(row.id);
      children.set(row.parent_id, list);
    }
  }
  const out = new Map<string, StatementRow>();
  const rowOf = (tenantId: string, customers: StoredCustomer[]) => {
    const rating = ratings.get(tenantId);
    if (!rating) throw new Error(`no rating for ${tenantId}`);
    const customersMinor = customers.reduce(
      (sum, c) => sum + parseDecimal(c.total, 'total', rating.exponent),
      0n,
    );
    return {
      id: newId('stm'),
      tenant_id: tenantId,
      month: month.text,
      currency: rating.currency,
      total: formatScaled(rating.totalMinor, rating.exponent),
      lines: JSON.stringify(rating.lines.map((l) => storedLine(l, rating.exponent))),
      customers: JSON.stringify(customers),
      customers_total: formatScaled(customersMinor, rating.exponent),
      margin: formatScaled(customersMinor - rating.totalMinor, rating.exponent),
      close_time: clock.now(),
    };
  };
  // Up to CHUNK statements per transaction, in order: a parent reads its children's statements
  // after they are written (in an earlier chunk, or earlier in its own).
  for (let i = 0; i < order.length; i += CHUNK) {
    await db.transaction().execute(async (trx) => {
      const pending: ReturnType<typeof rowOf>[] = [];
      const flush = async () => {
        if (pending.length === 0) return;
        const inserted = await trx
          .insertInto('statement')
          .values(pending.splice(0))
          .onConflict((oc) => oc.columns(['tenant_id', 'month']).doNothing())
          .returningAll()
          .execute();
        for (const row of inserted) {
          await onStatementClosed(trx, row);
          out.set(row.tenant_id, row);
        }
      };
      for (const tenantId of order.slice(i, i + CHUNK)) {
        const kids = children.get(tenantId) ?? [];
        if (kids.length === 0) {
          pending.push(rowOf(tenantId, []));
          continue;
        }
        await flush();
        const kidStatements = await trx
          .selectFrom('statement')
          .select(['id', 'tenant_id', 'total'])
          .where('month', '=', month.text)
          .where('tenant_id', 'in', kids)
          .execute();
        const byKid = new Map(kidStatements.map((s) => [s.tenant_id, s]));
        const zero = formatScaled(0n, ratings.get(tenantId)?.exponent ?? 2);
        pending.push(
          rowOf(
            tenantId,
            kids.map((id) => {
              const s = byKid.get(id);
              return s
                ? { tenant_id: id, priced: true, total: s.total, statement_id: s.id }
                : { tenant_id: id, priced: false, total: zero, statement_id: '' };
            }),
          ),
        );
        await flush();
      }
      await flush();
    });
  }
  // Statements a concurrent close stored first.
  const missing = order.filter((id) => !out.has(id));
  for (let i = 0; i < missing.length; i += 1000) {
    const rows = await db
      .selectFrom('statement')
      .selectAll()
      .where('month', '=', month.text)
      .where('tenant_id', 'in', missing.slice(i, i + 1000))
      .execute();
    for (const row of rows) out.set(row.tenant_id, row);
  }
  return out;
}

/**
 * Closes a tenant's month (and first its descendants' that have books), or returns the statement
 * closed earlier. FAILED_PRECONDITION when the month is not over or no book of the tenant is in
 * force during it.
 */
export async function closeStatement(
  db: Kysely<Database>,
  tenantId: string,
  month: Month,
  clock: Clock,
): Promise<StatementRow> {
  requireOver(month, clock);
  const existing = await statementOf(db, tenantId, month.text);
  if (existing) return existing;
  const tree = (await subtrees(db, [tenantId])).get(tenantId) ?? [tenantId];
  const closed = await closeStatements(db, month, await unclosed(db, tree, month), clock);
  const row = closed.get(tenantId) ?? (await statementOf(db, tenantId, month.text));
  if (!row) {
    throw new FailedPreconditionError(
      `tenant ${JSON.stringify(tenantId)} has no price book in force in ${month.text}: nothing prices its usage`,
    );
  }
  return row;
}

/** Closes the month of every tenant with a book in force during it; returns how many were closed now. */
export async function closeMonth(db: Kysely<Database>, month: Month, clock: Clock): Promise<number> {
  requireOver(month, clock);
  const priced = await db
    .selectFrom('price_book')
    .select('tenant_id')
    .distinct()
    .where('effective_from', '<', month.end)
    .execute();
  const todo = await unclosed(
    db,
    priced.map((r) => r.tenant_id),
    month,
  );
  return (await closeStatements(db, month, todo, clock)).size;
}

/** A statement by id, or NOT_FOUND. */
export async function statementById(db: Kysely<Database>, id: string): Promise<StatementRow> {
  const row = await db.selectFrom('statement').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('statement', id);
  return row;
}
