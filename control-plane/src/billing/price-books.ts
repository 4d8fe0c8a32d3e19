// Price books: validation of a new book and every query on the price_book table. A book is never
// changed: a price change is a new book with a later effective_from.
import { type Kysely, sql, type Transaction } from 'kysely';
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';
import type { Database, StoredPrice } from '../store/schema.js';
import { currencyExponent } from './currencies.js';
import { formatScaled, formatTrimmed, PRICE_DIGITS, parseDecimal } from './money.js';
import type { BookPrice, Dimension, RatedBook } from './rating.js';

export const MAX_PRICES = 100;
export const MAX_TIERS = 20;
const DEVICE_CLASS = /^[A-Za-z0-9._-]{0,63}$/;
const MINUTE_MS = 60_000;
/** Books take effect on the 15-minute grid usage is rolled up on, so every piece ends on a rollup edge. */
const SLOT_MS = 15 * MINUTE_MS;

/** A book as a caller asks for it, dimensions already mapped from the wire. */
export interface BookInput {
  currency: string;
  /** Undefined: the start of the next minute. */
  effectiveFrom: Date | undefined;
  prices: {
    dimension: Dimension | undefined;
    deviceClass: string;
    includedQuantity: bigint;
    tiers: { upTo: bigint; unitPrice: string }[];
  }[];
  minimumCharge: string;
  displayName: string;
}

export interface NewBook {
  currency: string;
  effectiveFrom: Date;
  prices: BookPrice[];
  minimumCharge: string;
  displayName: string;
}

/** Checks a book and puts it in canonical form; errors name the field and the value. */
export function validateBook(input: BookInput, now: Date): NewBook {
  const currency = input.currency;
  const exponent = currencyExponent(currency, 'price_book.currency');
  const minuteNow = Math.floor(now.getTime() / MINUTE_MS) * MINUTE_MS;
  let effectiveFrom: Date;
  if (input.effectiveFrom === undefined)
    effectiveFrom = new Date(Math.floor(minuteNow / SLOT_MS) * SLOT_MS + SLOT_MS);
  else {
    effectiveFrom = input.effectiveFrom;
    if (effectiveFrom.getTime() % SLOT_MS !== 0) {
      throw new InvalidArgumentError(
        'price_book.effective_from',
        effectiveFrom.toISOString(),
        'must be a multiple of 15 minutes (UTC :00, :15, :30 or :45, seconds and nanos zero): usage is kept in 15-minute buckets',
      );
    }
    if (effectiveFrom.getTime() < minuteNow) {
      throw new InvalidArgumentError(
        'price_book.effective_from',
        effectiveFrom.toISOString(),
        `is in the past: a price change never rewrites the past (the earliest is ${new Date(minuteNow).toISOString()})`,
      );
    }
  }
  if (input.prices.length > MAX_PRICES) {
    throw new InvalidArgumentError('price_book.prices', input.prices.length, `at most ${MAX_PRICES} prices`);
  }
  const seen = new Set<string>();
  const prices: BookPrice[] = input.prices.map((p, i) => {
    const field = `price_book.prices[${i}]`;
    if (!p.dimension) throw new InvalidArgumentError(`${field}.dimension`, 'UNSPECIFIED', 'is required');
    if (!DEVICE_CLASS.test(p.deviceClass)) {
      throw new InvalidArgumentError(
        `${field}.device_class`,
        p.deviceClass,
        'must be at most 63 letters, digits, ".", "_" or "-"',
      );
    }
    const key = `${p.dimension}/${p.deviceClass}`;
    if (seen.has(key)) {
      throw new InvalidArgumentError(
        `${field}.device_class`,
        p.deviceClass,
        `the book already has a price for ${p.dimension} and this class`,
      );
    }
    seen.add(key);
    if (p.tiers.length === 0 || p.tiers.length > MAX_TIERS) {
      throw new InvalidArgumentError(`${field}.tiers`, p.tiers.length, `must have 1 to ${MAX_TIERS} tiers`);
    }
    let previous = 0n;
    const tiers = p.tiers.map((t, j) => {
      const tierField = `${field}.tiers[${j}]`;
      const last = j === p.tiers.length - 1;
      if (last && t.upTo !== 0n) {
        throw new InvalidArgumentError(
          `${tierField}.up_to`,
          t.upTo,
          'must be 0 (unbounded) on the last tier',
        );
      }
      if (!last && t.upTo <= previous) {
        throw new InvalidArgumentError(
          `${tierField}.up_to`,
          t.upTo,
          `must be above the previous tier's up_to (${previous}); only the last tier is unbounded (0)`,
        );
      }
      if (!last) previous = t.upTo;
      const nano = parseDecimal(t.unitPrice, `${tierField}.unit_price`, PRICE_DIGITS);
      return { upTo: t.upTo, unitPrice: formatTrimmed(nano, PRICE_DIGITS) };
    });
    return {
      dimension: p.dimension,
      deviceClass: p.deviceClass,
      includedQuantity: p.includedQuantity,
      tiers,
    };
  });
  const minimum = parseDecimal(input.minimumCharge || '0', 'price_book.minimum_charge', exponent);
  const displayName = input.displayName.trim();
  if (displayName.length > 200) {
    throw new InvalidArgumentError('price_book.display_name', input.displayName, 'at most 200 characters');
  }
  return { currency, effectiveFrom, prices, minimumCharge: formatScaled(minimum, exponent), displayName };
}

export type PriceBookRow = Awaited<ReturnType<typeof getPriceBook>> & object;

export function storedPrices(prices: readonly BookPrice[]): StoredPrice[] {
  return prices.map((p) => ({
    dimension: p.dimension,
    device_class: p.deviceClass,
    included_quantity: p.includedQuantity.toString(),
    tiers: p.tiers.map((t) => ({ up_to: t.upTo.toString(), unit_price: t.unitPrice })),
  }));
}

export function pricesOf(stored: readonly StoredPrice[]): BookPrice[] {
  return stored.map((p) => ({
    dimension: p.dimension as Dimension,
    deviceClass: p.device_class,
    includedQuantity: BigInt(p.included_quantity),
    tiers: p.tiers.map((t) => ({ upTo: BigInt(t.up_to), unitPrice: t.unit_price })),
  }));
}

export function ratedBook(row: PriceBookRow): RatedBook {
  return {
    id: row.id,
    effectiveFrom: row.effective_from,
    prices: pricesOf(row.prices),
    minimumCharge: row.minimum_charge,
  };
}

/**
 * The tree a book's currency is shared in: the tenant's highest ancestor below the platform (a
 * reseller, or a customer of the platform), or the tenant itself.
 */
async function currencyRoot(trx: Transaction<Database>, tenantId: string): Promise<string> {
  const result = await sql<{ id: string; kind: string; depth: number }>`
    with recursive up(id, parent_id, kind, depth) as (
      select id, parent_id, kind, 0 from tenant where id = ${tenantId}
      union all
      select t.id, t.parent_id, t.kind, up.depth + 1 from tenant t join up on t.id = up.parent_id
    )
    select id, kind, depth from up where kind <> 'platform' order by depth desc limit 1`.execute(trx);
  return result.rows[0]?.id ?? tenantId;
}

/**
 * Inserts a book. Every book of one tree below the platform shares a currency (no exchange rates);
 * two books of one tenant never take effect at the same time. Both are checked under a lock of the
 * tree, so concurrent creates cannot break them.
 */
export async function insertPriceBook(
  trx: Transaction<Database>,
  book: NewBook & { id: string; tenantId: string; creator: string; createTime: Date },
): Promise<void> {
  const root = await currencyRoot(trx, book.tenantId);
  await sql`select pg_advisory_xact_lock(hashtext(${`price_book:${root}`}))`.execute(trx);
  const other = await sql<{ id: string; tenant_id: string; currency: string }>`
    with recursive sub(id) as (
      select id from tenant where id = ${root}
      union all
      select t.id from tenant t join sub on t.parent_id = sub.id
    )
    select b.id, b.tenant_id, b.currency from price_book b join sub on b.tenant_id = sub.id
    where b.currency <> ${book.currency} limit 1`.execute(trx);
  const conflict = other.rows[0];
  if (conflict) {
    throw new FailedPreconditionError(
      `currency ${JSON.stringify(book.currency)} differs from ${JSON.stringify(conflict.currency)} of price book ` +
        `${JSON.stringify(conflict.id)} (tenant ${JSON.stringify(conflict.tenant_id)}) in the same tree: a retail ` +
        "book must be in its wholesale book's currency (no exchange rates)",
    );
  }
  const inserted = await trx
    .insertInto('price_book')
    .values({
      id: book.id,
      tenant_id: book.tenantId,
      currency: book.currency,
      effective_from: book.effectiveFrom,
      prices: JSON.stringify(storedPrices(book.prices)),
      minimum_charge: book.minimumCharge,
      display_name: book.displayName,
      creator: book.creator,
      create_time: book.createTime,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'effective_from']).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inserted) {
    throw new FailedPreconditionError(
      `tenant ${JSON.stringify(book.tenantId)} already has a price book taking effect at ` +
        `${book.effectiveFrom.toISOString()}: two books of one tenant cannot overlap`,
    );
  }
}

export function getPriceBook(db: Kysely<Database> | Transaction<Database>, id: string) {
  return db.selectFrom('price_book').selectAll().where('id', '=', id).executeTakeFirst();
}

/** A tenant's books, latest effective_from first, after the cursor (an effective_from in ms). */
export function listPriceBooks(db: Kysely<Database>, tenantId: string, limit: number, before?: Date) {
  let query = db
    .selectFrom('price_book')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('effective_from', 'desc')
    .limit(limit);
  if (before) query = query.where('effective_from', '<', before);
  return query.execute();
}

/** The books of the tenants that take effect before `end`, oldest first. */
export function booksBefore(db: Kysely<Database>, tenantIds: readonly string[], end: Date) {
  if (tenantIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom('price_book')
    .selectAll()
    .where('tenant_id', 'in', tenantIds)
    .where('effective_from', '<', end)
    .orderBy('effective_from')
    .execute();
}

/** The currency of a tenant's books (they share one), or undefined when it has none. */
export async function bookCurrency(db: Kysely<Database>, tenantId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('price_book')
    .select('currency')
    .where('tenant_id', '=', tenantId)
    .limit(1)
    .executeTakeFirst();
  return row?.currency;
}
