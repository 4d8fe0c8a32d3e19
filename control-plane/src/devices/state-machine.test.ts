import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeviceState } from '@cphone/proto';
import {
  assertTransition,
  canTransition,
  IllegalTransitionError,
  stateFromProto,
  stateToProto,
} from './state-machine.js';

test('the lifecycle follows the documented transitions', () => {
  const path = [
    'pending',
    'scheduled',
    'creating',
    'booting',
    'running',
    'stopping',
    'stopped',
    'booting',
  ] as const;
  for (let i = 1; i < path.length; i++)
    assert.ok(canTransition(path[i - 1]!, path[i]!), `${path[i - 1]} -> ${path[i]}`);
  assert.ok(canTransition('running', 'deleting'));
  assert.ok(canTransition('deleting', 'deleted'));
  assert.ok(canTransition('running', 'lost'));
  assert.ok(canTransition('lost', 'running'));
});

test('illegal transitions are refused with the current state named', () => {
  assert.ok(!canTransition('deleted', 'running'));
  assert.ok(!canTransition('deleted', 'deleting'));
  assert.ok(!canTransition('pending', 'lost'), 'an unplaced device cannot be lost');
  assert.ok(!canTransition('stopped', 'stopping'));
  assert.throws(
    () => assertTransition('dev_1', 'deleting', 'running'),
    (e: unknown) => e instanceof IllegalTransitionError && /"dev_1" is deleting/.test(e.message),
  );
});

test('states map to and from the wire enum', () => {
  assert.equal(stateToProto('lost'), DeviceState.LOST);
  assert.equal(stateFromProto(DeviceState.RUNNING), 'running');
  assert.equal(stateFromProto(DeviceState.UNSPECIFIED), undefined);
});
