// Glass-to-glass latency against a truth known independently of the sfu's method. The fixture phone
// stamps each frame as captured 120 ms before it sends it, and keeps what it stamped; the player
// (headless Chromium) runs with its clock 3 s ahead and keeps, beside what it reports, when it
// presented each frame on the machine's clock. Browser and Node share that clock on loopback, so
// the truth of a frame is its presentation less the capture the phone stamped: the sfu's figure,
// which goes through the clock estimate, the RTP timestamps mediasoup forwards and the room's
// capture times, must land within 5 ms of it for 95 % of the frames and within 10 ms for every one
// (a loaded 2-core machine delays a few presentations' timestamps by a few ms on either side).
import * as assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import type { Browser } from 'playwright-core';
import { FixtureFeeds, launchChromium, startTestSfu, ViewerPage } from './testing/index.js';

const CAPTURE_DELAY_MS = 120;
const CLOCK_SKEW_MS = 3000;

let browser: Browser;
before(async () => {
  browser = await launchChromium();
});
after(() => browser.close());

test('the sfu’s glass-to-glass figure matches the truth within 5 ms (p95) with the player’s clock 3 s off', async (t) => {
  const sfu = await startTestSfu({
    feeds: new FixtureFeeds({ captureDelayMs: CAPTURE_DELAY_MS }),
    statsIntervalMs: 60_000,
  });
  const viewer = await ViewerPage.open(browser);
  try {
    await viewer.start({
      url: sfu.url,
      token: await sfu.tokens.sign({ deviceId: 'p' }),
      reportEveryMs: 200,
      clockSkewMs: CLOCK_SKEW_MS,
    });
    const state = await waitFor(
      '90 presented frames measured',
      () => viewer.state(),
      (s) => s.presented.filter((f) => typeof f.glassToGlassMs === 'number').length >= 90,
    );
    // The machine's clock is the host's and the player's: host − player = −skew.
    assert.ok(state.clockOffsetMs !== undefined && state.clockRttMs !== undefined);
    const offsetError = state.clockOffsetMs + CLOCK_SKEW_MS;
    assert.ok(Math.abs(offsetError) < 5, `offset off by ${offsetError} ms (RTT ${state.clockRttMs} ms)`);

    const stamped = sfu.feeds.of('p')[0]!.captureTimes;
    const compared = state.presented
      .filter((f) => typeof f.glassToGlassMs === 'number')
      .map((f) => {
        const captured = stamped.get(f.rtpTimestamp);
        assert.ok(captured !== undefined, `frame ${f.rtpTimestamp} was sent by the phone`);
        return { reported: f.glassToGlassMs as number, truth: f.presentedAtMs - captured };
      });
    const errors = compared.map((c) => Math.abs(c.reported - c.truth)).sort((a, b) => a - b);
    const worst = errors.at(-1) as number;
    const p95 = errors[Math.ceil(errors.length * 0.95) - 1] as number;
    assert.ok(p95 < 5, `p95 error ${p95.toFixed(2)} ms over ${compared.length} frames`);
    assert.ok(worst < 10, `worst error ${worst.toFixed(2)} ms over ${compared.length} frames`);
    const truths = compared.map((c) => c.truth).sort((a, b) => a - b);
    // Chromium's performance.timeOrigin and Node's clock agree to a few ms, not exactly: the same
    // 5 ms the figure is held to.
    assert.ok(
      truths[0]! >= CAPTURE_DELAY_MS - 5,
      `no frame is shown before the phone captured it (earliest ${truths[0]!.toFixed(2)} ms)`,
    );
    const unmeasured = state.presented.filter((f) => f.glassToGlassMs === null).length;
    t.diagnostic(
      `glass-to-glass truth p50 ${truths[Math.floor(truths.length / 2)]!.toFixed(1)} ms ` +
        `(${CAPTURE_DELAY_MS} ms of it before the sfu), error p95 ${p95.toFixed(2)} / worst ${worst.toFixed(2)} ms, ` +
        `offset error ${offsetError.toFixed(2)} ms, clock RTT ${state.clockRttMs?.toFixed(2)} ms, ` +
        `${unmeasured} frames unmeasured`,
    );

    const stats = await viewer.request('stats');
    assert.ok((stats.glassToGlassP50Ms as number) >= CAPTURE_DELAY_MS, JSON.stringify(stats));
    assert.ok((stats.glassToGlassP95Ms as number) >= (stats.glassToGlassP50Ms as number));
    const metrics = await sfu.sfu.registry.metrics();
    const count = Number(/cphone_stream_glass_to_glass_seconds_count (\d+)/.exec(metrics)?.[1]);
    assert.ok(count >= compared.length, `every measured frame is in the histogram (${count})`);
  } finally {
    await viewer.close();
    await sfu.close();
  }
});
