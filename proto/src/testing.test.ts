import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from './testing.js';

test('waitFor returns the first value the predicate accepts, probing again after throws', async () => {
  let calls = 0;
  const value = await waitFor(
    'the third call',
    () => {
      calls++;
      if (calls === 1) throw new Error('not yet');
      return { calls };
    },
    (v) => v.calls >= 3,
    { intervalMs: 1 },
  );
  assert.deepEqual(value, { calls: 3 });
});

test('waitFor fails naming what it waited for and the last value or error it saw', async () => {
  await assert.rejects(
    waitFor(
      'a state',
      () => ({ state: 'BOOTING', n: 7n }),
      (v) => v.state === 'RUNNING',
      {
        timeoutMs: 30,
        intervalMs: 5,
      },
    ),
    /timed out after 30 ms waiting for a state; last seen: \{ state: 'BOOTING', n: 7n \}/,
  );
  await assert.rejects(
    waitFor(
      'a socket',
      () => Promise.reject(new Error('ECONNREFUSED')),
      () => true,
      { timeoutMs: 30, intervalMs: 5 },
    ),
    /waiting for a socket; last seen: error Error: ECONNREFUSED/,
  );
});

test('waitFor lets a predicate that throws fail the wait at once', async () => {
  const started = Date.now();
  await assert.rejects(
    waitFor(
      'a broken predicate',
      () => undefined as { state: string } | undefined,
      (v) => (v as { state: string }).state === 'x',
    ),
    TypeError,
  );
  assert.ok(Date.now() - started < 1000);
});
