// Exact money: amounts are bigints of a fixed decimal scale, never binary floats. Unit prices carry
// up to 9 fraction digits (PRICE_DIGITS); amounts are rounded half to even to the currency's minor
// unit one charge line at a time, and totals are sums of rounded lines.
import { InvalidArgumentError } from '../errors.js';

/** Fraction digits a unit price may have. */
export const PRICE_DIGITS = 9;
const INTEGER_DIGITS = 12;

/**
 * A non-negative decimal string as an integer scaled by 10^digits ("1.25", 9 -> 1250000000n).
 * Refuses negatives, exponents, signs and more than `digits` fraction digits, naming the field.
 */
export function parseDecimal(text: string, field: string, digits: number): bigint {
  if (text.trim().startsWith('-')) throw new InvalidArgumentError(field, text, 'must not be negative');
  const match = new RegExp(`^(\\d{1,${INTEGER_DIGITS}})(?:\\.(\\d{1,${Math.max(digits, 1)}}))?$`).exec(text);
  if (!match || (digits === 0 && text.includes('.'))) {
    throw new InvalidArgumentError(
      field,
      text,
      `must be a decimal of at most ${INTEGER_DIGITS} integer and ${digits} fraction digits, like "${digits === 0 ? '12' : `12.${'5'.repeat(Math.min(digits, 4))}`}"`,
    );
  }
  const [, whole = '0', fraction = ''] = match;
  return BigInt(whole) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0');
}

/** An integer scaled by 10^digits as a decimal with exactly `digits` fraction digits (-1234n, 2 -> "-12.34"). */
export function formatScaled(value: bigint, digits: number): string {
  const negative = value < 0n;
  const abs = (negative ? -value : value).toString().padStart(digits + 1, '0');
  const text = digits === 0 ? abs : `${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
  return negative ? `-${text}` : text;
}

/** formatScaled without trailing fraction zeros ("0.012500000" -> "0.0125", "2.000" -> "2"). */
export function formatTrimmed(value: bigint, digits: number): string {
  const text = formatScaled(value, digits);
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** num / den rounded half to even (banker's rounding); num >= 0, den > 0. */
export function roundHalfEven(num: bigint, den: bigint): bigint {
  const quotient = num / den;
  const twice = (num % den) * 2n;
  if (twice > den) return quotient + 1n;
  if (twice < den) return quotient;
  return quotient % 2n === 0n ? quotient : quotient + 1n;
}

/**
 * num / den as an exact decimal string, trailing zeros trimmed; den must divide a power of ten
 * (a product of 2s and 5s, as 1000 and 1024 are).
 */
export function exactQuotient(num: bigint, den: bigint): string {
  let digits = 0;
  let scaled = num;
  while (scaled % den !== 0n) {
    if (digits > 40) throw new RangeError(`${num}/${den} has no finite decimal form`);
    scaled *= 10n;
    digits++;
  }
  return formatTrimmed(scaled / den, digits);
}
