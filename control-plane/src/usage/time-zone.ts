// Time zones and buckets: a caller's local hours, days and months as UTC instants, and each bucket
// cut into rollup rows (15-minute, hourly, UTC-daily) that tile it exactly. Every real offset is a
// multiple of 15 minutes, so every local boundary falls on a 15-minute rollup boundary.
import { InvalidArgumentError } from '../errors.js';
import type { UsageGrain } from '../store/schema.js';

const MINUTE = 60_000;
const SLOT = 15 * MINUTE;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface Zone {
  /** As given ("" for UTC). */
  readonly name: string;
  /** Local time minus UTC at the instant, in ms. */
  offsetAt(ms: number): number;
}

const FIXED = /^([+-])(\d{2}):(\d{2})$/;

/** A zone from an IANA name or a fixed offset ("+05:45"); "" and "UTC" are UTC. */
export function parseTimeZone(value: string, field = 'time_zone'): Zone {
  if (value === '' || value === 'UTC' || value === 'Z') return { name: value, offsetAt: () => 0 };
  const fixed = FIXED.exec(value);
  if (fixed) {
    const hours = Number(fixed[2]);
    const minutes = Number(fixed[3]);
    if (hours > 14 || minutes >= 60 || minutes % 15 !== 0 || hours * 60 + minutes > 14 * 60) {
      throw new InvalidArgumentError(
        field,
        value,
        'an offset must be a multiple of 15 minutes within ±14:00',
      );
    }
    const offset = (fixed[1] === '-' ? -1 : 1) * (hours * HOUR + minutes * MINUTE);
    return { name: value, offsetAt: () => offset };
  }
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat('en-US', { timeZone: value, timeZoneName: 'longOffset' });
  } catch {
    throw new InvalidArgumentError(
      field,
      value,
      'must be an IANA time zone ("Europe/Paris") or an offset such as "+05:30"',
    );
  }
  const cache = new Map<number, number>();
  return {
    name: value,
    offsetAt(ms) {
      const cached = cache.get(ms);
      if (cached !== undefined) return cached;
      const name = format.formatToParts(ms).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
      const m = /^GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(name);
      let offset = 0;
      if (m?.[1]) {
        offset =
          (m[1] === '-' ? -1 : 1) * (Number(m[2]) * HOUR + Number(m[3]) * MINUTE + Number(m[4] ?? 0) * 1000);
      }
      if (cache.size > 10_000) cache.clear();
      cache.set(ms, offset);
      return offset;
    },
  };
}

export type BucketUnit = 'range' | 'hour' | 'day' | 'month';

/** The UTC instant of a local wall time (the later one in a gap, the earlier in a repeat). */
function instantOf(zone: Zone, wall: number): number {
  const first = wall - zone.offsetAt(wall);
  return wall - zone.offsetAt(first);
}

/** The first local hour, day or month boundary after `t`. */
function nextBoundary(zone: Zone, t: number, unit: Exclude<BucketUnit, 'range'>): number {
  if (unit === 'hour') {
    // Local hours start where local time is a whole hour; the offset may change inside one.
    const before = t + HOUR - mod(t + zone.offsetAt(t), HOUR);
    const after = t + HOUR - mod(t + zone.offsetAt(before), HOUR);
    const ok = [before, after].filter((x) => x > t && mod(x + zone.offsetAt(x), HOUR) === 0);
    return ok.length > 0 ? Math.min(...ok) : before;
  }
  const wall = new Date(t + zone.offsetAt(t));
  const y = wall.getUTCFullYear();
  const m = wall.getUTCMonth();
  let next = unit === 'day' ? Date.UTC(y, m, wall.getUTCDate() + 1) : Date.UTC(y, m + 1, 1);
  let x = instantOf(zone, next);
  // A local midnight that does not exist (a gap at 00:00) must still move forward.
  while (x <= t) {
    next += unit === 'day' ? DAY : 31 * DAY;
    x = instantOf(zone, next);
  }
  return x;
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

/**
 * The bucket boundaries of [start, end) in the zone: start, every local boundary inside, end.
 * Throws when a boundary is not on the 15-minute grid (a historical local mean time).
 */
export function bucketBounds(
  zone: Zone,
  start: number,
  end: number,
  unit: BucketUnit,
  field = 'time_zone',
): number[] {
  const bounds = [start];
  if (unit !== 'range') {
    for (let t = nextBoundary(zone, start, unit); t < end; t = nextBoundary(zone, t, unit)) {
      if (t % SLOT !== 0) {
        throw new InvalidArgumentError(
          field,
          zone.name,
          `its ${unit} boundary at ${new Date(t).toISOString()} is not on the 15-minute grid usage is kept in`,
        );
      }
      bounds.push(t);
    }
  }
  bounds.push(end);
  return bounds;
}

/** A range of rollup rows of one grain: bucket_start in [lo, hi). */
export interface Run {
  readonly grain: UsageGrain;
  readonly lo: number;
  readonly hi: number;
}

/**
 * Rollup rows that tile the buckets exactly: in each bucket, 15-minute rows up to the first whole
 * hour, hourly rows up to the first whole UTC day, daily rows, and the same back down at the end.
 * Adjacent runs of one grain are merged (a row always lies inside one bucket).
 */
export function runsOf(bounds: readonly number[]): Run[] {
  const pieces: Run[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    let a = bounds[i] as number;
    let b = bounds[i + 1] as number;
    const tail: Run[] = [];
    const take = (grain: UsageGrain, size: number) => {
      const lo = a;
      while (a < b && a % size !== 0 && a + (grain === 15 ? SLOT : HOUR) <= b)
        a += grain === 15 ? SLOT : HOUR;
      if (a > lo) pieces.push({ grain, lo, hi: a });
      const hi = b;
      while (b > a && b % size !== 0 && b - (grain === 15 ? SLOT : HOUR) >= a)
        b -= grain === 15 ? SLOT : HOUR;
      if (b < hi) tail.unshift({ grain, lo: b, hi });
    };
    take(15, HOUR);
    take(60, DAY);
    if (b > a) pieces.push({ grain: 1440, lo: a, hi: b });
    pieces.push(...tail);
  }
  const merged: Run[] = [];
  for (const p of pieces.sort((x, y) => x.grain - y.grain || x.lo - y.lo)) {
    const last = merged[merged.length - 1];
    if (last && last.grain === p.grain && last.hi === p.lo) merged[merged.length - 1] = { ...last, hi: p.hi };
    else merged.push(p);
  }
  return merged;
}
