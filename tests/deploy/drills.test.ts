// The operations drills of deploy/drills in their lean form: each starts PostgreSQL servers of its
// own (initdb/pg_ctl on free loopback ports in temporary folders), the real control plane and real
// agents, and returns the figures it also prints as JSON when run by hand (--mode=full for more
// load). The upgrade drill needs podman's Docker API and the stand-in image: set up here with the
// project's idempotent script, as CI does before the suites.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { failoverDrill } from '../../deploy/drills/failover.js';
import { restoreDrill } from '../../deploy/drills/restore.js';
import { upgradeDrill } from '../../deploy/drills/upgrade.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

before(() => {
  const setup = spawnSync('bash', [join(root, 'scripts/setup-podman.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  assert.equal(setup.status, 0, 'scripts/setup-podman.sh failed');
});

test('restore: a point-in-time restore brings back every row committed before the target and none after', async () => {
  const summary = await restoreDrill({ mode: 'lean', target: 'time' });
  process.stderr.write(`${JSON.stringify(summary.figures)}\n`);
  assert.deepEqual(summary.failures, []);
  assert.deepEqual(summary.figures.mismatches, {});
  assert.equal(summary.figures.devicesMissing, 0);
  assert.equal(summary.figures.devicesAfterTargetPresent, 0);
  assert.ok(summary.figures.devicesAfterTarget > 0, 'rows were written after the target');
  assert.ok((summary.figures.atTarget.usage_samples ?? 0) > 0, 'usage was metered before the target');
  assert.ok(summary.passed);
});

test('failover: the synchronous standby takes over mid-load with no acknowledged row lost and one leadership', async () => {
  const summary = await failoverDrill({ mode: 'lean' });
  process.stderr.write(`${JSON.stringify(summary.figures)}\n`);
  assert.deepEqual(summary.failures, []);
  assert.equal(summary.figures.rowsLost, 0);
  assert.equal(summary.figures.usageSamplesLost, 0);
  assert.equal(summary.figures.leadershipAcquiredAfterKill, 1);
  assert.equal(summary.figures.syncStateBeforeKill, 'sync');
  assert.ok(summary.figures.requestsAcknowledged > 0);
  assert.ok(summary.figures.rtoMs < 30_000, `RTO ${summary.figures.rtoMs} ms`);
});

test('upgrade: v0.1.0 agents work under this control plane and upgrade one by one with no phone restarted', async () => {
  const summary = await upgradeDrill({ mode: 'lean' });
  process.stderr.write(`${JSON.stringify(summary.figures)}\n`);
  assert.deepEqual(summary.failures, []);
  assert.equal(summary.figures.fromVersion, '0.1.0');
  assert.match(summary.figures.fromCommit, /^[0-9a-f]{40}$/);
  assert.equal(summary.figures.phonesRestarted, 0);
  assert.equal(summary.figures.phonesNotRunning, 0);
  assert.equal(summary.figures.downtimeMs.length, summary.figures.agents);
});
