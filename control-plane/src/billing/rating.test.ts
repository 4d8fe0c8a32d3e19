import assert from 'node:assert/strict';
import { test } from 'node:test';
import { currencyExponent } from './currencies.js';
import { exactQuotient, formatScaled, parseDecimal, roundHalfEven } from './money.js';
import { type ClassQuantities, planPeriod, priceMonths, type RatedBook, zeroQuantities } from './rating.js';

const at = (iso: string) => new Date(iso);

function usage(perClass: Record<string, Partial<ReturnType<typeof zeroQuantities>>>): ClassQuantities {
  return new Map(Object.entries(perClass).map(([cls, q]) => [cls, { ...zeroQuantities(), ...q }]));
}

test('half to even: ties go to the even neighbour, everything else to the nearest', () => {
  assert.equal(roundHalfEven(25n, 10n), 2n);
  assert.equal(roundHalfEven(35n, 10n), 4n);
  assert.equal(roundHalfEven(15n, 10n), 2n);
  assert.equal(roundHalfEven(26n, 10n), 3n);
  assert.equal(roundHalfEven(24n, 10n), 2n);
  assert.equal(roundHalfEven(0n, 7n), 0n);
  assert.equal(formatScaled(-1234n, 2), '-12.34');
  assert.equal(formatScaled(5n, 2), '0.05');
  assert.equal(formatScaled(7n, 0), '7');
  assert.equal(exactQuotient(1536n, 1024n), '1.5');
  assert.equal(exactQuotient(1n, 1024n), '0.0009765625');
});

test('decimals parse exactly; negatives, exponents and extra digits are refused naming the field', () => {
  assert.equal(parseDecimal('0.0125', 'p', 9), 12_500_000n);
  assert.equal(parseDecimal('12', 'p', 2), 1200n);
  assert.throws(
    () => parseDecimal('-0.01', 'tiers[0].unit_price', 9),
    /tiers\[0\]\.unit_price "-0\.01": must not be negative/,
  );
  assert.throws(() => parseDecimal('1e-3', 'p', 9), /invalid p "1e-3"/);
  assert.throws(() => parseDecimal('0.1234567891', 'p', 9), /at most 12 integer and 9 fraction digits/);
  assert.throws(() => parseDecimal('1.5', 'minimum_charge', 0), /minimum_charge/);
  assert.equal(currencyExponent('USD'), 2);
  assert.equal(currencyExponent('JPY'), 0);
  assert.equal(currencyExponent('BHD'), 3);
  assert.throws(() => currencyExponent('XYZ', 'price_book.currency'), /price_book.currency "XYZ"/);
});

test('each line is rounded on its own and the total is the sum of the rounded lines', () => {
  // Three classes at 0.005 per minute, one minute each: every line is 0.005, a tie rounded to 0.00
  // (even); a total rounded once would say 0.02. 0.015 rounds to 0.02 (even).
  const book: RatedBook = {
    id: 'b',
    effectiveFrom: at('2026-10-01T00:00:00Z'),
    minimumCharge: '0.00',
    prices: ['a', 'b', 'c', 'd'].map((cls) => ({
      dimension: 'device_minutes' as const,
      deviceClass: cls,
      includedQuantity: 0n,
      tiers: [{ upTo: 0n, unitPrice: cls === 'd' ? '0.015' : '0.005' }],
    })),
  };
  const plan = planPeriod([book], at('2026-10-05T00:00:00Z'), at('2026-10-06T00:00:00Z'));
  const lines = priceMonths(
    plan,
    () =>
      usage({
        a: { device_minutes: 1n },
        b: { device_minutes: 1n },
        c: { device_minutes: 1n },
        d: { device_minutes: 1n },
      }),
    2,
  );
  assert.deepEqual(
    lines.map((l) => [l.deviceClass, l.amountMinor]),
    [
      ['a', 0n],
      ['b', 0n],
      ['c', 0n],
      ['d', 2n],
    ],
  );
});

test('memory and vCPU are exact fractions of their units; JPY has no minor digits', () => {
  const book: RatedBook = {
    id: 'b',
    effectiveFrom: at('2026-10-01T00:00:00Z'),
    minimumCharge: '0',
    prices: [
      {
        dimension: 'memory_gib_minutes',
        deviceClass: '',
        includedQuantity: 0n,
        tiers: [{ upTo: 0n, unitPrice: '3' }],
      },
      {
        dimension: 'vcpu_minutes',
        deviceClass: '',
        includedQuantity: 0n,
        tiers: [{ upTo: 0n, unitPrice: '1' }],
      },
    ],
  };
  const plan = planPeriod([book], at('2026-10-05T00:00:00Z'), at('2026-10-06T00:00:00Z'));
  // 1536 MiB-minutes = 1.5 GiB-minutes x 3 = 4.5 -> 4 (even); 2500 millicore-minutes = 2.5 -> 2.
  const lines = priceMonths(plan, () => usage({ '': { memory_gib_minutes: 1536n, vcpu_minutes: 2500n } }), 0);
  assert.deepEqual(
    lines.map((l) => [l.dimension, l.quantity, l.amountMinor]),
    [
      ['vcpu_minutes', '2.5', 2n],
      ['memory_gib_minutes', '1.5', 4n],
    ],
  );
});

test('a month is cut at a book change; the allowance and tiers continue across the pieces', () => {
  const a: RatedBook = {
    id: 'a',
    effectiveFrom: at('2026-10-01T00:00:00Z'),
    minimumCharge: '0.00',
    prices: [
      {
        dimension: 'device_minutes',
        deviceClass: '',
        includedQuantity: 100n,
        tiers: [
          { upTo: 1000n, unitPrice: '0.01' },
          { upTo: 0n, unitPrice: '0.008' },
        ],
      },
    ],
  };
  const b: RatedBook = {
    ...a,
    id: 'b',
    effectiveFrom: at('2026-10-16T00:00:00Z'),
    minimumCharge: '30.00',
    prices: [
      {
        dimension: 'device_minutes',
        deviceClass: '',
        includedQuantity: 100n,
        tiers: [
          { upTo: 1000n, unitPrice: '0.02' },
          { upTo: 0n, unitPrice: '0.015' },
        ],
      },
    ],
  };
  const plan = planPeriod([a, b], at('2026-10-01T00:00:00Z'), at('2026-11-01T00:00:00Z'));
  assert.equal(plan.length, 1);
  assert.deepEqual(
    plan[0]?.pieces.map((p) => [p.start.toISOString(), p.end.toISOString(), p.book?.id]),
    [
      ['2026-10-01T00:00:00.000Z', '2026-10-16T00:00:00.000Z', 'a'],
      ['2026-10-16T00:00:00.000Z', '2026-11-01T00:00:00.000Z', 'b'],
    ],
  );
  const lines = priceMonths(
    plan,
    (piece) => usage({ '': { device_minutes: piece.book?.id === 'a' ? 700n : 850n } }),
    2,
  );
  // a: 100 free, 600 x 0.01 = 6.00. b: the allowance is used up; billable units 601..1000 at 0.02
  // (400 = 8.00), then 450 x 0.015 = 6.75. 20.75 < b's minimum 30.00: 9.25 more.
  assert.deepEqual(
    lines.map((l) => [l.kind, l.priceBookId, l.tier, l.quantity, formatScaled(l.amountMinor, 2)]),
    [
      ['included', 'a', 0, '100', '0.00'],
      ['usage', 'a', 1, '600', '6.00'],
      ['usage', 'b', 1, '400', '8.00'],
      ['usage', 'b', 2, '450', '6.75'],
      ['minimum', 'b', 0, '1', '9.25'],
    ],
  );
  assert.equal(
    lines.reduce((s, l) => s + l.amountMinor, 0n),
    3000n,
  );
});

test('a period starting mid-month counts the month before it, shows only its own pieces, and gets no minimum', () => {
  const book: RatedBook = {
    id: 'a',
    effectiveFrom: at('2026-09-01T00:00:00Z'),
    minimumCharge: '100.00',
    prices: [
      {
        dimension: 'device_minutes',
        deviceClass: '',
        includedQuantity: 50n,
        tiers: [{ upTo: 0n, unitPrice: '1' }],
      },
    ],
  };
  const plan = planPeriod([book], at('2026-10-10T00:00:00Z'), at('2026-11-05T00:00:00Z'));
  assert.deepEqual(
    plan.map((m) => [m.start.toISOString().slice(0, 7), m.whole, m.pieces.map((p) => p.shown)]),
    [
      ['2026-10', false, [false, true]],
      ['2026-11', false, [true]],
    ],
  );
  // 30 minutes before the period: 30 of the 50 free minutes are gone, so 20 of the next 40 are free.
  const lines = priceMonths(plan, (piece) => usage({ '': { device_minutes: piece.shown ? 40n : 30n } }), 2);
  assert.deepEqual(
    lines.map((l) => [l.start.toISOString().slice(0, 10), l.kind, l.quantity, l.amountMinor]),
    [
      ['2026-10-10', 'included', '20', 0n],
      ['2026-10-10', 'usage', '20', 2000n],
      ['2026-11-01', 'included', '40', 0n],
    ],
  );
});
