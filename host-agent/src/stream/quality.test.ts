// The quality controller against simulated links on a manual clock: each second every viewer
// reports what mediasoup would (an estimate, loss, what was sent), the controller's changes are
// applied, and the test reads how fast it settles and whether it holds still.
import * as assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type LinkReport,
  type QualityChange,
  QualityController,
  type QualityControllerOptions,
} from './quality.js';
import { ladderFor, narrowest, RUNGS, rungFor } from './quality-ladder.js';

const AUDIO = 80_000;

/** A link as a sender sees it; `estimate` defaults to the capacity itself. */
interface SimViewer {
  id: string;
  rights?: 'view' | 'control';
  preset?: 'auto' | '1080p' | '720p' | '480p';
  /** What the path carries at time t (ms), bits/s. */
  capacity(t: number): number;
  /** The sender's estimate of it; default the capacity. */
  estimate?(t: number, sent: number): number;
  /** Extra loss on top of overload (a lossy radio), 0..1. */
  loss?(t: number): number;
  /** Share of the target the encoder produces (a still screen sends little); default 1. */
  busy?(t: number): number;
}

interface Run {
  controller: QualityController;
  changes: (QualityChange & { at: number })[];
  /** Advances by `ms`, one report per viewer and one evaluate a second. */
  run(ms: number): void;
  readonly now: number;
}

function simulate(viewers: SimViewer[], options: QualityControllerOptions = {}): Run {
  let now = 0;
  const controller = new QualityController({ now: () => now, ...options });
  for (const v of viewers)
    controller.setViewer(v.id, { rights: v.rights ?? 'control', preset: v.preset ?? 'auto' });
  const changes: Run['changes'] = [];
  return {
    controller,
    changes,
    get now() {
      return now;
    },
    run(ms) {
      for (const end = now + ms; now < end; ) {
        now += 1000;
        for (const v of viewers) {
          const sent = controller.capture.videoBitRate * (v.busy?.(now) ?? 1) + AUDIO;
          const capacity = v.capacity(now);
          const overload = sent > capacity ? (sent - capacity) / sent : 0;
          const report: LinkReport = {
            availableBitrate: v.estimate?.(now, sent) ?? capacity,
            lossFraction: Math.min(1, overload + (v.loss?.(now) ?? 0)),
            sendBitrate: sent,
          };
          controller.report(v.id, report);
        }
        const change = controller.evaluate();
        if (change) changes.push({ ...change, at: now });
      }
    },
  };
}

/** A seeded generator (mulberry32), so noisy runs repeat exactly. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const step = (at: number, before: number, after: number) => (t: number) => (t < at ? before : after);
/** libwebrtc's AIMD estimate never grows past 1.5 × what was acknowledged + 10 kbit/s. */
const throughputBound = (capacity: (t: number) => number) => (t: number, sent: number) =>
  Math.min(capacity(t), 1.5 * sent + 10_000);
const fits = (c: QualityChange | QualityController, capacity: number) =>
  c.capture.videoBitRate + AUDIO <= capacity;
const kbps = (c: { capture: { videoBitRate: number } }) => c.capture.videoBitRate / 1000;

describe('quality controller', () => {
  test('a link that drops from 4 to 0.8 Mbit/s: one step down, within 3 s, to what fits', (t) => {
    const sim = simulate([{ id: 'a', capacity: step(60_000, 4_000_000, 800_000) }]);
    sim.run(60_000);
    assert.equal(sim.controller.rung, '1080p30', `climbed first: ${JSON.stringify(sim.changes)}`);
    const before = sim.changes.length;
    sim.run(60_000);
    const after = sim.changes.slice(before);
    assert.equal(after.length, 1, JSON.stringify(after));
    const [down] = after;
    t.diagnostic(
      `step down settled ${down!.at - 60_000} ms after the drop: ${down!.rung} at ${kbps(down!)} kbit/s`,
    );
    assert.ok(down!.at - 60_000 <= 3000);
    assert.equal(down!.cause, 'bandwidth');
    assert.equal(down!.rung, '480p30');
    assert.ok(fits(down!, 800_000 * 0.9));
  });

  test('the link recovers: steps up after stable windows, never overshooting, to the top', (t) => {
    for (const [name, estimate] of [
      ['an estimate that knows the capacity', undefined],
      ['an estimate bounded by 1.5 × what was sent', throughputBound(step(30_000, 800_000, 5_000_000))],
    ] as const) {
      const sim = simulate([
        { id: 'a', capacity: step(30_000, 800_000, 5_000_000), ...(estimate ? { estimate } : {}) },
      ]);
      sim.run(30_000);
      const from = sim.changes.length;
      sim.run(120_000);
      const ups = sim.changes.slice(from);
      assert.ok(ups.length >= 2 && ups.every((c) => c.cause === 'recovered'), JSON.stringify(ups));
      assert.ok(
        ups.slice(1).every((c, i) => c.at - ups[i]!.at >= 6000),
        'each step waited for a stable window',
      );
      assert.ok(ups.every((c) => fits(c, 5_000_000 * 0.9)));
      const last = ups.at(-1)!;
      t.diagnostic(
        `${name}: ${ups.map((c) => `${c.rung}@${kbps(c)}`).join(' → ')}, settled ${last.at - 30_000} ms after the link came back`,
      );
      assert.equal(last.rung, '1080p30');
      assert.ok(last.capture.videoBitRate >= 3_500_000);
      assert.ok(last.at - 30_000 <= 60_000);
    }
  });

  /** Eleven minutes of an estimate swinging ±`swing` around the budget `centre`, per seed. */
  const noisy = (centre: number, swing: number, seed: number) => {
    const rand = random(seed);
    const mean = (centre + AUDIO) / 0.9;
    const sim = simulate([
      {
        id: 'a',
        capacity: () => mean * (1 + swing),
        estimate: () => mean * (1 - swing + 2 * swing * rand()),
        loss: () => rand() * 0.01,
      },
    ]);
    sim.run(60_000);
    const settling = sim.changes.length;
    sim.run(600_000);
    return { settling, later: sim.changes.slice(settling), all: sim.changes };
  };

  test('estimates swinging ±15 % around each rung floor: it settles in the first minute and holds', (t) => {
    const figures: string[] = [];
    for (const [rung, floor] of [
      ['1080p30', 1_800_000],
      ['720p30', 900_000],
      ['480p30', 400_000],
    ] as const) {
      let worst = 0;
      let settling = 0;
      for (let seed = 1; seed <= 20; seed++) {
        const run = noisy(floor, 0.15, seed);
        settling = Math.max(settling, run.settling);
        worst = Math.max(worst, run.later.length);
        assert.ok(run.settling <= 2, `${rung} seed ${seed}: ${JSON.stringify(run.all)}`);
        assert.ok(run.later.length <= 1, `${rung} seed ${seed}: ${JSON.stringify(run.later)}`);
        const rungs = run.all.map((c) => c.rung);
        assert.ok(
          !rungs.some((r, i) => i >= 2 && r === rungs[i - 2] && r !== rungs[i - 1]),
          `${rung} seed ${seed} flaps between sizes: ${rungs.join(' → ')}`,
        );
      }
      figures.push(`${rung} floor: ≤ ${settling} changes in the first minute, ≤ ${worst} in the next ten`);
    }
    t.diagnostic(`20 seeds each; ${figures.join('; ')}`);
  });

  test('a wilder ±25 % swing, wider than the band: a few single steps, never a quick reversal', (t) => {
    let total = 0;
    let worst = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const { later, all } = noisy(1_000_000, 0.25, seed);
      total += later.length;
      worst = Math.max(worst, later.length);
      assert.ok(later.length <= 4, `seed ${seed}: ${JSON.stringify(later)}`);
      for (const [i, c] of all.entries()) {
        const previous = all[i - 1];
        if (!previous) continue;
        assert.ok(c.at - previous.at >= 3000, `seed ${seed}: changes a dwell time apart`);
        // Down then up needs a whole stable window (8 s) after the down.
        if (c.cause === 'recovered')
          assert.ok(c.at - previous.at >= 8000, `seed ${seed}: ${JSON.stringify(all)}`);
      }
    }
    t.diagnostic(
      `20 seeds: ${(total / 20).toFixed(2)} changes per ten minutes after the first (most ${worst})`,
    );
  });

  test('a fixed preset holds its size and caps the bit rate; a change of preset applies at once', () => {
    const sim = simulate([{ id: 'a', preset: '480p', capacity: step(40_000, 10_000_000, 300_000) }]);
    sim.run(1000);
    assert.deepEqual(sim.changes[0], {
      capture: { maxSize: 848, maxFps: 30, videoBitRate: 1_200_000 },
      rung: '480p30',
      cause: 'preset',
      at: 1000,
    });
    sim.run(39_000);
    assert.equal(sim.changes.length, 1, 'capped at 1.2 Mbit/s whatever the link');
    sim.run(30_000);
    assert.ok(sim.changes.every((c) => c.capture.maxSize === 848));
    assert.equal(sim.controller.rung, '480p15', 'a narrow link drops the rate, not the size');

    sim.controller.setViewer('a', { rights: 'control', preset: '1080p' });
    sim.run(1000);
    const pinned = sim.changes.at(-1)!;
    assert.equal(pinned.cause, 'preset');
    assert.deepEqual([pinned.capture.maxSize, pinned.capture.maxFps], [1920, 15]);
    sim.run(60_000);
    assert.ok(sim.changes.slice(-1).every((c) => c.capture.maxSize === 1920));
  });

  test('the controlling viewer decides; spectators only when nobody controls', () => {
    const sim = simulate([
      { id: 'ctl', capacity: () => 5_000_000 },
      { id: 'ctl2', capacity: () => 3_000_000 },
      { id: 'spectator', rights: 'view', capacity: () => 600_000, preset: '480p' },
    ]);
    sim.run(60_000);
    assert.ok(sim.changes.every((c) => c.viewer !== 'spectator'));
    assert.equal(sim.controller.rung, '1080p30');
    assert.ok(fits(sim.controller, 3_000_000 * 0.9), 'the weaker controller is the limit');
    assert.ok(sim.controller.capture.videoBitRate >= 2_200_000);
    sim.controller.removeViewer('ctl');
    sim.controller.removeViewer('ctl2');
    sim.run(10_000);
    assert.equal(sim.controller.capture.maxSize, 848, "the spectator's preset and link now decide");
    assert.ok(fits(sim.controller, 600_000));
  });

  test("a new viewer's ramping estimate and a still screen's untested one are no reason to step down", () => {
    // mediasoup starts a transport's estimate at 600 kbit/s; probing finds the link in seconds.
    const sim = simulate([
      { id: 'a', capacity: () => 4_000_000, estimate: (t) => Math.min(4_000_000, 600_000 * 2 ** (t / 1000)) },
    ]);
    sim.run(4000);
    assert.deepEqual(sim.changes, []);
    // A still screen sends ~50 kbit/s: the estimate stays where it was, never tested.
    const still = simulate([
      { id: 'a', capacity: () => 4_000_000, estimate: () => 600_000, busy: () => 0.02 },
    ]);
    still.run(60_000);
    assert.deepEqual(still.changes, []);
    // A moving screen on such a link overloads it: the loss steps down, even in the warm-up, to
    // what got through.
    const busy = simulate([{ id: 'a', capacity: () => 600_000 }]);
    busy.run(20_000);
    assert.deepEqual(
      busy.changes.map((c) => [c.at, c.cause]),
      [[3000, 'loss']],
    );
    assert.ok(fits(busy.controller, 600_000 * 0.9));
  });

  test('sustained loss steps down; a burst of loss does not', () => {
    const burst = simulate([{ id: 'a', capacity: () => 10_000_000, loss: (t) => (t === 20_000 ? 0.3 : 0) }], {
      initial: { maxSize: 1920, maxFps: 30, videoBitRate: 4_000_000 },
    });
    burst.run(40_000);
    assert.deepEqual(burst.changes, []);
    // A lossy radio: the estimate sees room, the receiver sees 8 % loss.
    const lossy = simulate([{ id: 'a', capacity: () => 10_000_000, loss: (t) => (t > 10_000 ? 0.08 : 0) }], {
      initial: { maxSize: 1920, maxFps: 30, videoBitRate: 4_000_000 },
    });
    lossy.run(60_000);
    // 8 % of 4.08 Mbit/s lost: what got through, with headroom and audio, is 3.29 Mbit/s.
    assert.deepEqual(
      lossy.changes.map((c) => [c.at, c.cause, c.capture.videoBitRate]),
      [[13_000, 'loss', 3_290_000]],
      'and no further: the loss did not fall with the rate',
    );
  });

  test('only changes come out, and nothing without viewers', () => {
    let now = 0;
    const controller = new QualityController({ now: () => now });
    for (; now < 30_000; now += 500) assert.equal(controller.evaluate(), undefined);
    controller.setViewer('a', { rights: 'control', preset: 'auto' });
    const seen: QualityChange[] = [];
    for (; now < 120_000; now += 250) {
      controller.report('a', { availableBitrate: 3_500_000, lossFraction: 0 });
      const change = controller.evaluate();
      if (change) seen.push(change);
    }
    assert.equal(seen.length, 1, JSON.stringify(seen));
    assert.deepEqual(controller.capture, seen[0]!.capture);
  });

  test('the ladder: sizes under the ceiling, the narrowest preset, 20 % more to climb a rung', () => {
    const names = (preset: Parameters<typeof ladderFor>[0], ceiling: Parameters<typeof ladderFor>[1]) =>
      ladderFor(preset, ceiling).map((r) => r.name);
    assert.deepEqual(names('auto', '1080p'), ['1080p30', '720p30', '480p30', '480p15']);
    assert.deepEqual(names('auto', '720p'), ['720p30', '480p30', '480p15']);
    assert.deepEqual(
      names('1080p', '720p'),
      ['720p30', '720p15'],
      'a preset above the display is held at it',
    );
    assert.deepEqual(names('480p', '1080p'), ['480p30', '480p15']);
    assert.equal(narrowest(['auto', '720p', '1080p']), '720p');
    assert.equal(narrowest(['auto', 'auto']), 'auto');
    const auto = ladderFor('auto', '1080p');
    assert.equal(rungFor(auto, 1_000_000, RUNGS['480p30'], 0.2).name, '480p30', '720p30 needs 1.08 Mbit/s');
    assert.equal(rungFor(auto, 1_100_000, RUNGS['480p30'], 0.2).name, '720p30');
    assert.equal(rungFor(auto, 950_000, RUNGS['720p30'], 0.2).name, '720p30', 'staying needs only the floor');
    assert.equal(rungFor(auto, 899_000, RUNGS['720p30'], 0.2).name, '480p30');
    assert.equal(rungFor(auto, 50_000, RUNGS['720p30'], 0.2).name, '480p15', 'the last rung takes anything');
  });
});
