// Calendar months in a chosen time zone, without a date library: the usage page asks for a month
// as the reader's zone counts it ("March in New York"), and the API wants UTC instants on the
// 15-minute grid. A zone is an IANA name ("Asia/Kathmandu") or a fixed offset ("+05:45").

const QUARTER_HOUR_MS = 15 * 60_000;
const FIXED_OFFSET = /^([+-])(\d{2}):(\d{2})$/;

/** The zone this browser runs in (an IANA name), UTC when it cannot tell. */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Every IANA zone the browser knows, for the zone picker; empty where it cannot list them. */
export function knownZones(): string[] {
  const intl = Intl as { supportedValuesOf?: (key: string) => string[] };
  return intl.supportedValuesOf?.('timeZone') ?? [];
}

function fixedOffsetMinutes(zone: string): number | undefined {
  const m = FIXED_OFFSET.exec(zone);
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -minutes : minutes;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function wallClock(zone: string): Intl.DateTimeFormat {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, f);
  }
  return f;
}

/** Whether the API and this page can both work with `zone`. */
export function isZone(zone: string): boolean {
  if (fixedOffsetMinutes(zone) !== undefined) return true;
  try {
    wallClock(zone);
    return true;
  } catch {
    return false;
  }
}

/** How far `zone`'s wall clock is ahead of UTC at `instantMs`, in milliseconds. */
export function zoneOffsetMs(zone: string, instantMs: number): number {
  const fixed = fixedOffsetMinutes(zone);
  if (fixed !== undefined) return fixed * 60_000;
  const parts: Record<string, number> = {};
  for (const p of wallClock(zone).formatToParts(new Date(instantMs))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  const asUtc = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

/**
 * The instant `zone`'s wall clock shows `wallMs` (a wall time written as if it were UTC). A wall
 * time skipped by a daylight-saving change resolves to the instant after the gap.
 */
function zonedToUtc(zone: string, wallMs: number): number {
  const first = wallMs - zoneOffsetMs(zone, wallMs);
  const second = wallMs - zoneOffsetMs(zone, first);
  return second === first ? first : Math.max(first, second);
}

/** "YYYY-MM" of the month `zone` is in at `now`. */
export function monthIn(zone: string, now: Date = new Date()): string {
  const wall = new Date(now.getTime() + zoneOffsetMs(zone, now.getTime()));
  return wall.toISOString().slice(0, 7);
}

/**
 * The month "YYYY-MM" as `zone` counts it: from its first midnight to the next month's. Both ends
 * are put on the 15-minute grid the usage API requires: every zone in use today is on it, only
 * historical local mean times are not, and for those the bucket starts up to 14 minutes early.
 */
export function monthRange(month: string, zone: string): { start: Date; end: Date } {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  if (!m) throw new RangeError(`month ${JSON.stringify(month)} is not YYYY-MM`);
  const [year, index] = [Number(m[1]), Number(m[2]) - 1];
  const floorToGrid = (ms: number) => new Date(Math.floor(ms / QUARTER_HOUR_MS) * QUARTER_HOUR_MS);
  return {
    start: floorToGrid(zonedToUtc(zone, Date.UTC(year, index, 1))),
    end: floorToGrid(zonedToUtc(zone, Date.UTC(year, index + 1, 1))),
  };
}

/** The calendar day `instant` falls on in `zone`, as the reader writes dates. */
export function formatDay(instant: Date, zone: string, locale: string): string {
  const fixed = fixedOffsetMinutes(zone);
  if (fixed === undefined)
    return new Intl.DateTimeFormat(locale, { timeZone: zone, dateStyle: 'medium' }).format(instant);
  const wall = new Date(instant.getTime() + fixed * 60_000);
  return new Intl.DateTimeFormat(locale, { timeZone: 'UTC', dateStyle: 'medium' }).format(wall);
}
