import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClockOffset, FrameTimes, glassToGlass, LatencyDigest } from './latency.js';

test('frame times are found by RTP timestamp (wrapped to 32 bits) and forgotten after the window or the capacity', () => {
  const times = new FrameTimes({ windowMs: 1000, capacity: 100 });
  times.add({ rtpTimestamp: 2 ** 32 - 1, captureTimeMs: 10_000 });
  times.add({ rtpTimestamp: 2 ** 32 + 2999, captureTimeMs: 10_033 });
  assert.equal(times.captureTime(-1), 10_000);
  assert.equal(times.captureTime(2999), 10_033);
  times.add({ rtpTimestamp: 9000, captureTimeMs: 11_001 });
  assert.equal(times.captureTime(2 ** 32 - 1), undefined, 'older than the window');
  assert.equal(times.captureTime(2999), 10_033);
  for (let i = 0; i < 150; i++) times.add({ rtpTimestamp: 100_000 + i, captureTimeMs: 11_002 + i / 1000 });
  assert.equal(times.size, 100);
  assert.equal(times.captureTime(100_049), undefined, 'beyond the capacity, the oldest go');
  assert.equal(times.captureTime(100_050), 11_002.05);
});

test('the clock offset comes from the round with the smallest RTT, whatever its legs', () => {
  const clock = new ClockOffset(4);
  assert.equal(clock.offsetMs, undefined);
  const host = 1_700_000_000_000;
  // The player's clock is 3 s ahead: host = player − 3000.
  const round = (sentAtHost: number, upMs: number, downMs: number) => ({
    t0: sentAtHost + 3000,
    serverTimeMs: sentAtHost + upMs,
    t1: sentAtHost + upMs + downMs + 3000,
  });
  assert.ok(clock.add(round(host, 40, 2), host + 100), 'a round slow one way');
  assert.equal(clock.offsetMs, -3000 + 19);
  assert.ok(clock.add(round(host + 1000, 1, 1), host + 1100));
  assert.equal(clock.offsetMs, -3000);
  assert.equal(clock.rttMs, 2);
  assert.ok(clock.add(round(host + 2000, 30, 30), host + 2100), 'a slower round changes nothing');
  assert.equal(clock.offsetMs, -3000);
  for (let i = 0; i < 4; i++) clock.add(round(host + 3000 + i, 5, 3), host + 3100);
  assert.equal(clock.offsetMs, -3000 + 1, 'the best round is forgotten after `keep` more');
  assert.equal(clock.add({ t0: 10, serverTimeMs: host, t1: 5 }, host), false, 'an RTT below 0');
  assert.equal(
    clock.add({ t0: 0, serverTimeMs: host + 60_000, t1: 1 }, host),
    false,
    'a host time not given yet',
  );
  assert.equal(clock.add({ t0: 0, serverTimeMs: 5, t1: 1 }, host), false, 'a host time from another clock');
});

test('glass-to-glass is the presentation on the host clock less the capture; what cannot be measured says why', () => {
  const times = new FrameTimes();
  times.add({ rtpTimestamp: 90_000, captureTimeMs: 1_000_000 });
  const clock = new ClockOffset();
  const frames = [
    { rtpTimestamp: 90_000, presentedAtMs: 1_003_100 },
    { rtpTimestamp: 93_000, presentedAtMs: 1_003_133 },
    { rtpTimestamp: 90_000, presentedAtMs: 1_002_900 },
  ];
  assert.deepEqual(glassToGlass(frames, clock, times), ['unsynced', 'unsynced', 'unsynced']);
  clock.add({ t0: 1_003_000, serverTimeMs: 1_000_001, t1: 1_003_002 }, 1_000_002);
  assert.deepEqual(glassToGlass(frames, clock, times), [100, 'unknown_frame', 'implausible']);
});

test('the latency digest gives nearest-rank percentiles at 1 ms', () => {
  const digest = new LatencyDigest();
  assert.equal(digest.percentile(0.5), 0);
  for (const ms of [50, 60, 70, 80, 90, 100, 110, 120, 130, 200]) digest.add(ms);
  assert.equal(digest.percentile(0.5), 90);
  assert.equal(digest.percentile(0.95), 200);
  digest.add(9000);
  assert.equal(digest.percentile(1), 2000, 'above 2 s counts as 2 s');
  assert.equal(digest.count, 11);
});
