import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import { ManualClock } from './clock.js';

test('a ManualClock stands still until moved, forward by advance and anywhere by set', async () => {
  const start = new Date('2031-03-01T12:00:00Z');
  const clock = new ManualClock({ start });
  const wall = Date.now();
  await waitFor(
    'the wall clock to move',
    () => Date.now(),
    (now) => now > wall,
  );
  assert.equal(clock.now().getTime(), start.getTime());
  assert.equal(clock.advance(1500).getTime(), start.getTime() + 1500);
  assert.equal(clock.now().getTime(), start.getTime() + 1500);
  assert.throws(() => clock.advance(-1), RangeError);
  clock.set(start);
  assert.equal(clock.now().getTime(), start.getTime());
});

test('a ticking ManualClock runs with the wall clock from where it was put', async () => {
  const clock = new ManualClock({ ticking: true });
  const jumped = clock.advance(60_000).getTime();
  assert.ok(jumped - Date.now() >= 59_000, 'a minute ahead of the wall clock');
  await waitFor(
    'the clock to run on',
    () => clock.now().getTime(),
    (now) => now > jumped,
  );
});
