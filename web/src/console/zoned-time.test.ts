import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDay, isZone, monthIn, monthRange, zoneOffsetMs } from './zoned-time.js';

const iso = (r: { start: Date; end: Date }) => [r.start.toISOString(), r.end.toISOString()];

test('a month runs from its first local midnight to the next, across a daylight-saving change', () => {
  assert.deepEqual(iso(monthRange('2026-03', 'America/New_York')), [
    '2026-03-01T05:00:00.000Z',
    '2026-04-01T04:00:00.000Z',
  ]);
  assert.deepEqual(iso(monthRange('2026-12', 'UTC')), [
    '2026-12-01T00:00:00.000Z',
    '2027-01-01T00:00:00.000Z',
  ]);
});

test('quarter-hour zones, named or as fixed offsets, give the same instants', () => {
  const kathmandu = ['2026-05-31T18:15:00.000Z', '2026-06-30T18:15:00.000Z'];
  assert.deepEqual(iso(monthRange('2026-06', 'Asia/Kathmandu')), kathmandu);
  assert.deepEqual(iso(monthRange('2026-06', '+05:45')), kathmandu);
  assert.deepEqual(iso(monthRange('2026-01', '-03:30')), [
    '2026-01-01T03:30:00.000Z',
    '2026-02-01T03:30:00.000Z',
  ]);
  assert.equal(zoneOffsetMs('Asia/Kolkata', Date.UTC(2026, 0, 1)), 330 * 60_000);
});

test('every end lies on the 15-minute grid the usage API requires', () => {
  for (const zone of ['Europe/Amsterdam', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Pacific/Chatham']) {
    for (const r of Object.values(monthRange('2026-10', zone))) assert.ok(r.getTime() % 900_000 === 0, zone);
  }
  // Amsterdam before 1937 ran on local mean time (+00:19:32): the start moves to the grid.
  const early = monthRange('1920-07', 'Europe/Amsterdam').start;
  assert.ok(early.getTime() % 900_000 === 0, early.toISOString());
});

test('the month and the day are read in the zone, not in UTC', () => {
  const instant = new Date('2026-06-30T20:00:00Z');
  assert.equal(monthIn('UTC', instant), '2026-06');
  assert.equal(monthIn('Asia/Tokyo', instant), '2026-07');
  assert.equal(formatDay(instant, 'Asia/Tokyo', 'en'), 'Jul 1, 2026');
  assert.equal(formatDay(instant, '+05:45', 'en'), 'Jul 1, 2026');
  assert.equal(formatDay(instant, 'UTC', 'en'), 'Jun 30, 2026');
});

test('bad zones and months are told apart from good ones', () => {
  assert.equal(isZone('Europe/Berlin'), true);
  assert.equal(isZone('+05:45'), true);
  assert.equal(isZone('Mars/Olympus'), false);
  assert.throws(() => monthRange('2026-13-01', 'UTC'), /month "2026-13-01" is not YYYY-MM/);
});
