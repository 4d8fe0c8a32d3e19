// The agent release range a control plane accepts (hello.ts): its own minor and the one before.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailedPreconditionError } from '../errors.js';
import { agentVersionRange, CONTROL_PLANE_VERSION, checkAgentVersion, parseVersion } from './hello.js';

test('the control plane knows its own release from its package.json', () => {
  assert.match(CONTROL_PLANE_VERSION, /^\d+\.\d+\.\d+/);
  assert.ok(parseVersion(CONTROL_PLANE_VERSION));
});

test('0.2.x accepts agents 0.1.0 to 0.2.x', () => {
  assert.equal(agentVersionRange('0.2.0').text, '0.1.0 to 0.2.x');
  for (const v of ['0.1.0', '0.1.7', '0.2.0', '0.2.3', '0.2.0-rc.1', '0.1.0+build.5']) {
    assert.doesNotThrow(() => checkAgentVersion(v, '0.2.0'), v);
  }
});

test('an older agent is FAILED_PRECONDITION naming its version, the range and what to do', () => {
  assert.throws(
    () => checkAgentVersion('0.0.9', '0.2.0'),
    (error: unknown) =>
      error instanceof FailedPreconditionError &&
      /agent_version 0\.0\.9 is too old: this control plane \(0\.2\.0\) accepts agents 0\.1\.0 to 0\.2\.x; upgrade the agent/.test(
        error.message,
      ),
  );
  assert.throws(() => checkAgentVersion('1.4.0', '1.6.2'), /1\.4\.0 is too old.*1\.5\.0 to 1\.6\.x/);
});

test('a newer agent is refused until the control plane is upgraded', () => {
  assert.throws(
    () => checkAgentVersion('0.3.0', '0.2.0'),
    (error: unknown) =>
      error instanceof FailedPreconditionError &&
      /0\.3\.0 is newer than this control plane \(0\.2\.0\).*upgrade the control plane first/.test(
        error.message,
      ),
  );
  assert.throws(() => checkAgentVersion('1.0.0', '0.2.0'), FailedPreconditionError);
});

test('a version that is not MAJOR.MINOR.PATCH is refused by name', () => {
  for (const v of ['', 'bench', '0.2', 'v0.2.0', '0.2.0.1', ' 0.2.0']) {
    assert.throws(
      () => checkAgentVersion(v, '0.2.0'),
      (error: unknown) =>
        error instanceof FailedPreconditionError &&
        error.message.startsWith(`agent_version ${JSON.stringify(v)} is not a release version`),
      JSON.stringify(v),
    );
  }
});

test('at MAJOR.0 every agent of the major before is accepted, older majors are not', () => {
  assert.equal(agentVersionRange('2.0.1').text, '1.0.0 to 2.0.x');
  assert.doesNotThrow(() => checkAgentVersion('1.9.4', '2.0.1'));
  assert.throws(() => checkAgentVersion('0.9.0', '2.0.1'), /too old/);
});
