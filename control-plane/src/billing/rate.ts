// Rating tenants over a period: their books, their subtrees' usage, priced by rating.ts. Many
// tenants are rated together: the usage of every distinct piece of the period is read once for all
// of them (a month where no book changes is one query for every tenant).
import { type Kysely, sql } from 'kysely';
import type { Database, StoredLine } from '../store/schema.js';
import { currencyExponent } from './currencies.js';
import { formatScaled } from './money.js';
import { booksBefore, type PriceBookRow, ratedBook } from './price-books.js';
import { usageQuantities } from './quantities.js';
import {
  addClassQuantities,
  type ClassQuantities,
  type Line,
  type MonthPlan,
  type Piece,
  planPeriod,
  priceMonths,
} from './rating.js';

export interface TenantRating {
  tenantId: string;
  currency: string;
  exponent: number;
  start: Date;
  end: Date;
  lines: Line[];
  totalMinor: bigint;
}

const BATCH = 1000;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

/** Each tenant's subtree, deleted descendants included (their usage before deletion is billed). */
export async function subtrees(db: Kysely<Database>, tenantIds: readonly string[]) {
  const out = new Map<string, string[]>(tenantIds.map((id) => [id, []]));
  for (const ids of chunks(tenantIds)) {
    const result = await sql<{ root: string; id: string }>`
      with recursive sub(root, id) as (
        select id, id from tenant where id in (${sql.join(ids)})
        union all
        select sub.root, t.id from tenant t join sub on t.parent_id = sub.id
      )
      select root, id from sub`.execute(db);
    for (const row of result.rows) out.get(row.root)?.push(row.id);
  }
  return out;
}

/**
 * Rates each tenant over [start, end) at its own books, its whole subtree's usage. A tenant with
 * no book taking effect before `end` is absent from the answer (nothing prices it).
 */
export async function rateTenants(
  db: Kysely<Database>,
  tenantIds: readonly string[],
  start: Date,
  end: Date,
): Promise<Map<string, TenantRating>> {
  const books = new Map<string, PriceBookRow[]>();
  for (const ids of chunks(tenantIds)) {
    for (const row of await booksBefore(db, ids, end)) {
      const list = books.get(row.tenant_id) ?? [];
      list.push(row);
      books.set(row.tenant_id, list);
    }
  }
  const rated = [...books.keys()];
  const trees = await subtrees(db, rated);
  const plans = new Map<string, MonthPlan[]>();
  // Which tenants' usage each distinct piece needs.
  const needs = new Map<string, { start: Date; end: Date; tenants: Set<string> }>();
  const keyOf = (p: Pick<Piece, 'start' | 'end'>) => `${p.start.getTime()}/${p.end.getTime()}`;
  for (const tenantId of rated) {
    const plan = planPeriod((books.get(tenantId) ?? []).map(ratedBook), start, end);
    plans.set(tenantId, plan);
    for (const piece of plan.flatMap((m) => m.pieces)) {
      if (!piece.book) continue;
      const key = keyOf(piece);
      let need = needs.get(key);
      if (!need) {
        need = { start: piece.start, end: piece.end, tenants: new Set() };
        needs.set(key, need);
      }
      for (const id of trees.get(tenantId) ?? []) need.tenants.add(id);
    }
  }
  const usage = new Map<string, Map<string, ClassQuantities>>();
  for (const [key, need] of needs) {
    usage.set(key, await usageQuantities(db, [...need.tenants], need.start, need.end));
  }
  const out = new Map<string, TenantRating>();
  for (const tenantId of rated) {
    const first = books.get(tenantId)?.[0];
    if (!first) continue;
    const exponent = currencyExponent(first.currency);
    const lines = priceMonths(
      plans.get(tenantId) ?? [],
      (piece) => {
        const sum: ClassQuantities = new Map();
        const perTenant = usage.get(keyOf(piece));
        for (const id of trees.get(tenantId) ?? []) {
          const q = perTenant?.get(id);
          if (q) addClassQuantities(sum, q);
        }
        return sum;
      },
      exponent,
    );
    out.set(tenantId, {
      tenantId,
      currency: first.currency,
      exponent,
      start,
      end,
      lines,
      totalMinor: lines.reduce((s, l) => s + l.amountMinor, 0n),
    });
  }
  return out;
}

/** A line as statements store it and the API shows it. */
export function storedLine(line: Line, exponent: number): StoredLine {
  return {
    kind: line.kind,
    description: line.description,
    dimension: line.dimension,
    device_class: line.deviceClass,
    price_book_id: line.priceBookId,
    start_time: line.start.toISOString(),
    end_time: line.end.toISOString(),
    tier: line.tier,
    quantity: line.quantity,
    unit_price: line.unitPrice,
    amount: formatScaled(line.amountMinor, exponent),
  };
}
