// Pricing, pure: a period is cut into calendar months (UTC) and each month into pieces at the
// effective dates of the tenant's price books; each piece is priced by the book in force at its
// start. Free allowances and tiers count whole months: a unit's place in its month is counted per
// dimension and per matched price's device class, across pieces, so usage priced earlier in the
// month under an older book counts toward the newer book's allowance and tier bounds (nothing is
// prorated). Pieces before the period's start are priced for those counters only and not shown.
// A month the period covers whole gets its book's minimum charge (the book in force at its end).
import { exactQuotient, formatScaled, PRICE_DIGITS, parseDecimal, roundHalfEven } from './money.js';

export type Dimension =
  | 'device_minutes'
  | 'stopped_device_minutes'
  | 'vcpu_minutes'
  | 'memory_gib_minutes'
  | 'storage_gib_minutes';

export const DIMENSIONS: readonly Dimension[] = [
  'device_minutes',
  'stopped_device_minutes',
  'vcpu_minutes',
  'memory_gib_minutes',
  'storage_gib_minutes',
];

/**
 * Measured units per priced unit: usage is measured in exact integers (device-minutes,
 * millicore-minutes, MiB-minutes, GiB-minutes) and priced per device-minute, vCPU-minute or
 * GiB-minute.
 */
export const MEASURED_PER_UNIT: Readonly<Record<Dimension, bigint>> = {
  device_minutes: 1n,
  stopped_device_minutes: 1n,
  vcpu_minutes: 1000n,
  memory_gib_minutes: 1024n,
  storage_gib_minutes: 1n,
};

const LABELS: Readonly<Record<Dimension, string>> = {
  device_minutes: 'Running device-minutes',
  stopped_device_minutes: 'Stopped device-minutes',
  vcpu_minutes: 'vCPU-minutes',
  memory_gib_minutes: 'Memory GiB-minutes',
  storage_gib_minutes: 'Storage GiB-minutes',
};

/** Measured quantities of one dimension set (see MEASURED_PER_UNIT). */
export type Quantities = Record<Dimension, bigint>;
/** Quantities per device class ("" for devices without one). */
export type ClassQuantities = Map<string, Quantities>;

export function zeroQuantities(): Quantities {
  return {
    device_minutes: 0n,
    stopped_device_minutes: 0n,
    vcpu_minutes: 0n,
    memory_gib_minutes: 0n,
    storage_gib_minutes: 0n,
  };
}

/** Adds `from` into `into`. */
export function addClassQuantities(into: ClassQuantities, from: ClassQuantities): void {
  for (const [cls, q] of from) {
    const sum = into.get(cls) ?? zeroQuantities();
    for (const d of DIMENSIONS) sum[d] += q[d];
    into.set(cls, sum);
  }
}

export interface Tier {
  /** Last billable unit of the month this tier prices; 0n: unbounded. */
  upTo: bigint;
  /** Canonical decimal string. */
  unitPrice: string;
}

export interface BookPrice {
  dimension: Dimension;
  deviceClass: string;
  includedQuantity: bigint;
  tiers: Tier[];
}

export interface RatedBook {
  id: string;
  effectiveFrom: Date;
  prices: BookPrice[];
  /** Decimal string with at most the currency's minor digits. */
  minimumCharge: string;
}

export interface Piece {
  start: Date;
  end: Date;
  /** The book in force; undefined before the tenant's first book (not charged). */
  book: RatedBook | undefined;
  /** False for pieces before the period's start: counted toward the month, not shown. */
  shown: boolean;
}

export interface MonthPlan {
  start: Date;
  end: Date;
  /** The period covers the whole month: its minimum charge applies. */
  whole: boolean;
  pieces: Piece[];
}

export interface Line {
  kind: 'usage' | 'included' | 'minimum';
  description: string;
  dimension: Dimension | '';
  deviceClass: string;
  priceBookId: string;
  start: Date;
  end: Date;
  tier: number;
  quantity: string;
  unitPrice: string;
  /** In the currency's minor unit, rounded. */
  amountMinor: bigint;
}

export function monthStart(t: Date): Date {
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1));
}

export function nextMonth(t: Date): Date {
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));
}

/** The book in force at `t`: the last one taking effect at or before it (books sorted by effective_from). */
function bookAt(books: readonly RatedBook[], t: Date): RatedBook | undefined {
  let found: RatedBook | undefined;
  for (const b of books) {
    if (b.effectiveFrom.getTime() > t.getTime()) break;
    found = b;
  }
  return found;
}

/** Cuts [start, end) into months and pieces; `books` sorted by effective_from, oldest first. */
export function planPeriod(books: readonly RatedBook[], start: Date, end: Date): MonthPlan[] {
  const months: MonthPlan[] = [];
  for (let m = monthStart(start); m < end; m = nextMonth(m)) {
    const mEnd = nextMonth(m);
    const rangeEnd = end < mEnd ? end : mEnd;
    const cuts = new Set<number>([m.getTime(), rangeEnd.getTime()]);
    if (start > m) cuts.add(start.getTime());
    for (const b of books) {
      if (b.effectiveFrom > m && b.effectiveFrom < rangeEnd) cuts.add(b.effectiveFrom.getTime());
    }
    const sorted = [...cuts].sort((a, b) => a - b);
    const pieces: Piece[] = [];
    for (let i = 0; i + 1 < sorted.length; i++) {
      const pStart = new Date(sorted[i] as number);
      pieces.push({
        start: pStart,
        end: new Date(sorted[i + 1] as number),
        book: bookAt(books, pStart),
        shown: pStart >= start,
      });
    }
    months.push({ start: m, end: mEnd, whole: start <= m && end >= mEnd, pieces });
  }
  return months;
}

/** The book's price for a dimension and device class: its own class's, else the class-less one. */
function priceFor(book: RatedBook, dimension: Dimension, cls: string): BookPrice | undefined {
  return (
    book.prices.find((p) => p.dimension === dimension && p.deviceClass === cls) ??
    book.prices.find((p) => p.dimension === dimension && p.deviceClass === '')
  );
}

function describe(dimension: Dimension, cls: string, what: string): string {
  return `${LABELS[dimension]}${cls ? ` [${cls}]` : ''} ${what}`;
}

/**
 * Prices planned months. `quantities(piece)` gives the measured usage of every piece with a book.
 * `exponent` is the currency's minor-unit exponent.
 */
export function priceMonths(
  months: readonly MonthPlan[],
  quantities: (piece: Piece) => ClassQuantities,
  exponent: number,
): Line[] {
  const lines: Line[] = [];
  const toMinor = 10n ** BigInt(exponent);
  for (const month of months) {
    const monthLines: Line[] = [];
    /** Measured units used so far this month, per dimension and matched price class. */
    const used = new Map<string, bigint>();
    for (const piece of month.pieces) {
      const book = piece.book;
      if (!book) continue;
      const byClass = quantities(piece);
      for (const dimension of DIMENSIONS) {
        const perPrice = new Map<BookPrice, bigint>();
        for (const [cls, q] of [...byClass].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          if (q[dimension] === 0n) continue;
          const price = priceFor(book, dimension, cls);
          if (price) perPrice.set(price, (perPrice.get(price) ?? 0n) + q[dimension]);
        }
        const ordered = [...perPrice].sort(([a], [b]) =>
          a.deviceClass < b.deviceClass ? -1 : a.deviceClass > b.deviceClass ? 1 : 0,
        );
        for (const [price, total] of ordered) {
          const scale = MEASURED_PER_UNIT[dimension];
          const key = `${dimension}\u0000${price.deviceClass}`;
          const before = used.get(key) ?? 0n;
          used.set(key, before + total);
          if (!piece.shown) continue;
          const base = {
            dimension,
            deviceClass: price.deviceClass,
            priceBookId: book.id,
            start: piece.start,
            end: piece.end,
          };
          const included = price.includedQuantity * scale;
          const free = clamp(included - before, 0n, total);
          if (free > 0n) {
            monthLines.push({
              ...base,
              kind: 'included',
              description: describe(dimension, price.deviceClass, 'included'),
              tier: 0,
              quantity: exactQuotient(free, scale),
              unitPrice: '0',
              amountMinor: 0n,
            });
          }
          // Billable units already used this month, and this piece's.
          let position = before > included ? before - included : 0n;
          let remaining = total - free;
          let lower = 0n;
          for (const [index, tier] of price.tiers.entries()) {
            if (remaining === 0n) break;
            const upper = tier.upTo === 0n ? undefined : tier.upTo * scale;
            const from = position > lower ? position : lower;
            const room = upper === undefined ? remaining : clamp(upper - from, 0n, remaining);
            if (upper !== undefined) lower = upper;
            if (room === 0n) continue;
            const priceNano = parseDecimal(tier.unitPrice, 'unit_price', PRICE_DIGITS);
            monthLines.push({
              ...base,
              kind: 'usage',
              description: describe(dimension, price.deviceClass, `tier ${index + 1}`),
              tier: index + 1,
              quantity: exactQuotient(room, scale),
              unitPrice: tier.unitPrice,
              amountMinor: roundHalfEven(room * priceNano * toMinor, scale * 10n ** BigInt(PRICE_DIGITS)),
            });
            position = from + room;
            remaining -= room;
          }
        }
      }
    }
    const last = month.pieces[month.pieces.length - 1]?.book;
    if (month.whole && last) {
      const minimum = parseDecimal(last.minimumCharge, 'minimum_charge', exponent);
      const sum = monthLines.reduce((s, l) => s + l.amountMinor, 0n);
      if (sum < minimum) {
        monthLines.push({
          kind: 'minimum',
          description: 'Monthly minimum charge',
          dimension: '',
          deviceClass: '',
          priceBookId: last.id,
          start: month.start,
          end: month.end,
          tier: 0,
          quantity: '1',
          unitPrice: formatScaled(minimum - sum, exponent),
          amountMinor: minimum - sum,
        });
      }
    }
    lines.push(...monthLines);
  }
  return lines;
}

function clamp(value: bigint, min: bigint, max: bigint): bigint {
  return value < min ? min : value > max ? max : value;
}
