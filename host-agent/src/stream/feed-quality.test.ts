import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { type CaptureSettings, DEFAULT_CAPTURE } from '../screen/index.js';
import { createQualityMetrics, FeedQuality } from './feed-quality.js';

function setup() {
  let now = 0;
  const asked: Partial<CaptureSettings>[] = [];
  const ingest = {
    capture: { ...DEFAULT_CAPTURE },
    reconfigure: async (changes: Partial<CaptureSettings>) => {
      asked.push(changes);
      ingest.capture = { ...ingest.capture, ...changes };
    },
  };
  const registry = new Registry();
  const quality = new FeedQuality({
    ingest,
    metrics: createQualityMetrics(registry),
    logger: pino({ enabled: false }),
    controller: { now: () => now },
  });
  return { quality, asked, registry, tick: (ms: number) => (now += ms) };
}

const value = async (registry: Registry, name: string, labels: Record<string, string> = {}) =>
  (await registry.getSingleMetric(name)!.get()).values.find((v) =>
    Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  )?.value ?? 0;

test('a preset applies at the join; the last viewer leaving lifts it', async () => {
  const { quality, asked, registry } = setup();
  assert.equal(await value(registry, 'cphone_stream_quality_feeds', { rung: '720p30' }), 1);
  quality.setViewer({ sessionId: 's', rights: 'control', quality: '480p' });
  assert.deepEqual(asked, [{ maxSize: 848, maxFps: 30, videoBitRate: 1_200_000 }]);
  assert.equal(await value(registry, 'cphone_stream_quality_changes_total', { cause: 'preset' }), 1);
  assert.equal(await value(registry, 'cphone_stream_quality_feeds', { rung: '480p30' }), 1);
  assert.equal(await value(registry, 'cphone_stream_quality_feeds', { rung: '720p30' }), 0);
  assert.equal(await value(registry, 'cphone_stream_target_bitrate_bps'), 1_200_000);
  quality.removeViewer('s');
  assert.equal(asked.length, 2);
  assert.deepEqual(asked[1], { maxSize: 1280, maxFps: 30, videoBitRate: 1_200_000 }, 'auto again');
  quality.close();
  assert.equal(await value(registry, 'cphone_stream_target_bitrate_bps'), 0);
});

test('a narrow link steps the phone down; the reconfigure carries the controller’s capture', () => {
  const { quality, asked, tick } = setup();
  quality.setViewer({ sessionId: 's', rights: 'control', quality: 'auto' });
  for (let i = 0; i < 12; i++) {
    tick(1000);
    quality.link('s', { availableBitrate: 600_000, lossFraction: 0, sendBitrate: 500_000, score: 10 });
  }
  const down = asked.find((c) => (c.videoBitRate ?? Infinity) < 1_000_000);
  assert.ok(down, JSON.stringify(asked));
  assert.deepEqual(down, { maxSize: 848, maxFps: 30, videoBitRate: 460_000 });
});
