import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { createSfuMetrics } from './metrics.js';

test('joins are exported at 0 before the first, so the first one shows as an increase', async () => {
  const registry = new Registry();
  const metrics = createSfuMetrics(registry);
  assert.match(await registry.metrics(), /cphone_sfu_joins_total\{outcome="joined"\} 0/);
  metrics.joins.inc({ outcome: 'joined' });
  const text = await registry.metrics();
  assert.match(text, /cphone_sfu_joins_total\{outcome="joined"\} 1/);
  assert.match(text, /cphone_sfu_joins_total\{outcome="resumed"\} 0/);
});
