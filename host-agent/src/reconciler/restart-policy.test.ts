import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideAfterExit, type ExitFacts } from './restart-policy.js';

const base: ExitFacts = {
  policy: 'always',
  failure: 'exit',
  exitCode: 0,
  crashes: 1,
  maxRestarts: 3,
  baseDelayMs: 100,
  capDelayMs: 1000,
};

test('policies decide by exit code and failure kind', () => {
  assert.equal(decideAfterExit(base).action, 'restart');
  assert.deepEqual(decideAfterExit({ ...base, policy: 'on_failure' }), {
    action: 'halt',
    state: 'stopped',
    reason: 'EXITED',
  });
  assert.equal(decideAfterExit({ ...base, policy: 'on_failure', exitCode: 1 }).action, 'restart');
  assert.equal(
    decideAfterExit({ ...base, policy: 'on_failure', failure: 'boot', exitCode: undefined }).action,
    'restart',
  );
  assert.deepEqual(decideAfterExit({ ...base, policy: 'never', exitCode: 2 }), {
    action: 'halt',
    state: 'error',
    reason: 'EXITED',
  });
  assert.deepEqual(decideAfterExit({ ...base, policy: 'never', failure: 'boot' }), {
    action: 'halt',
    state: 'error',
    reason: 'BOOT_TIMEOUT',
  });
});

test('restart delays double per consecutive failure up to the cap; past maxRestarts it is a crash loop', () => {
  const delays = [1, 2, 3].map((crashes) => {
    const d = decideAfterExit({ ...base, crashes, maxRestarts: 10 });
    return d.action === 'restart' ? d.delayMs : -1;
  });
  assert.deepEqual(delays, [100, 200, 400]);
  const capped = decideAfterExit({ ...base, crashes: 9, maxRestarts: 10 });
  assert.equal(capped.action === 'restart' && capped.delayMs, 1000);
  assert.deepEqual(decideAfterExit({ ...base, crashes: 4 }), {
    action: 'halt',
    state: 'error',
    reason: 'CRASH_LOOP',
  });
});
