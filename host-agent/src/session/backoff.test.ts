import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from './backoff.js';

test('delays stay within [0, min(cap, base * 2^n)) and the ceiling doubles up to the cap', () => {
  const backoff = new Backoff({ baseMs: 500, capMs: 30_000 });
  const ceilings: number[] = [];
  for (let n = 0; n < 12; n++) {
    const ceiling = backoff.ceiling();
    ceilings.push(ceiling);
    for (let k = 0; k < 50; k++) {
      const probe = new Backoff({ baseMs: 500, capMs: 30_000 });
      for (let i = 0; i < n; i++) probe.next();
      const delay = probe.next();
      assert.ok(delay >= 0 && delay < ceiling, `attempt ${n}: ${delay} outside [0, ${ceiling})`);
    }
    backoff.next();
  }
  assert.deepEqual(ceilings.slice(0, 8), [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  assert.equal(ceilings.at(-1), 30_000);
});

test('full jitter spans the whole range: the extremes of random give 0 and just under the ceiling', () => {
  assert.equal(new Backoff({ random: () => 0 }).next(), 0);
  const high = new Backoff({ random: () => 0.999999 });
  high.next();
  assert.equal(high.next(), 999);
});

test('reset starts again from the base; atCap stays within [cap/2, cap]', () => {
  const backoff = new Backoff({ baseMs: 100, capMs: 1000 });
  for (let i = 0; i < 10; i++) backoff.next();
  assert.equal(backoff.ceiling(), 1000);
  backoff.reset();
  assert.equal(backoff.ceiling(), 100);
  for (let i = 0; i < 100; i++) {
    const delay = backoff.atCap();
    assert.ok(delay >= 500 && delay <= 1000);
  }
  assert.equal(backoff.ceiling(), 1000, 'after a rejection the next ordinary delay is capped too');
  assert.ok(new Backoff({ baseMs: 500, capMs: 30_000 }).ceiling() === 500);
});
