import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spreadOver } from './spread.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

test('a few items all run at once', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const seen: number[] = [];
  spreadOver(range(40), 1000, (i) => seen.push(i), 100);
  assert.deepEqual(seen, range(40));
});

test('many items run in slices spaced evenly over the span, each item once and in order', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const seen: number[] = [];
  spreadOver(range(1000), 5000, (i) => seen.push(i), 100);
  // Ten slices over 5 s: one now, then one every 500 ms.
  assert.equal(seen.length, 100);
  t.mock.timers.tick(499);
  assert.equal(seen.length, 100);
  t.mock.timers.tick(1);
  assert.equal(seen.length, 200);
  t.mock.timers.tick(2000);
  assert.equal(seen.length, 600);
  t.mock.timers.tick(2500);
  assert.deepEqual(seen, range(1000));
});

test('cancelling stops the slices still to come', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const seen: number[] = [];
  const cancel = spreadOver(range(1000), 5000, (i) => seen.push(i), 100);
  t.mock.timers.tick(1000);
  assert.equal(seen.length, 300);
  cancel();
  t.mock.timers.tick(10_000);
  assert.equal(seen.length, 300);
});
