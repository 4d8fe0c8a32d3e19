import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SchedulingRow } from '../store/hosts.js';
import { FleetView } from './fleet-view.js';

function row(id: string, overrides: Partial<SchedulingRow> = {}): SchedulingRow {
  return {
    id,
    name: `${id}.rack`,
    arch: 'arm64',
    labels: {},
    connection: 'ready',
    gateway_replica: 'r1',
    cordoned: false,
    drain_state: null,
    capacity_vcpu_millicores: 8000,
    capacity_memory_mib: 16_384,
    capacity_storage_gib: 100,
    capacity_devices: 4,
    overcommit_cpu: 1,
    overcommit_memory: 1,
    allocated_vcpu_millicores: 0,
    allocated_memory_mib: 0,
    allocated_storage_gib: 0,
    allocated_devices: 0,
    change_seq: 1,
    ...overrides,
  };
}

const ask = { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 10, devices: 1 };
const slots = (view: FleetView, id: string, disconnected = false) => {
  const s = view.snapshot(disconnected);
  return s.allocated.slots[s.indexById.get(id) ?? -1];
};

test('a newer row replaces its host in place; an older or equal one is ignored', () => {
  const view = new FleetView([row('a'), row('b')]);
  assert.equal(view.apply([row('a', { allocated_devices: 2, change_seq: 5 })]), 1);
  assert.equal(slots(view, 'a'), 2);
  assert.equal(view.apply([row('a', { allocated_devices: 1, change_seq: 4 })]), 0, 'older');
  assert.equal(view.apply([row('a', { allocated_devices: 1, change_seq: 5 })]), 0, 'same change');
  assert.equal(slots(view, 'a'), 2);
  assert.equal(view.reindexes, 0, 'no host joined or left');
});

test('holds show in both snapshots, survive a row applied meanwhile, and are released or settled', () => {
  const view = new FleetView([row('a', { gateway_replica: null }), row('b')]);
  assert.equal(view.hasDisconnected, true);
  assert.equal(view.snapshot().ready[view.snapshot().indexById.get('a') ?? -1], 0);
  assert.equal(view.snapshot(true).ready[view.snapshot(true).indexById.get('a') ?? -1], 1);
  const hold = view.hold('b', ask, 't1');
  assert.equal(slots(view, 'b'), 1);
  assert.equal(slots(view, 'b', true), 1);
  // Another replica placed one on b: its row arrives while the hold is out.
  view.apply([row('b', { allocated_devices: 1, allocated_vcpu_millicores: 1000, change_seq: 2 })]);
  assert.equal(slots(view, 'b'), 2, 'the row plus the hold');
  view.release(hold);
  assert.equal(slots(view, 'b'), 1, 'the row alone');
  assert.equal(view.input('b')?.allocated?.vcpuMillicores, 1000);

  const written = view.hold('b', ask, 't1');
  view.apply([row('b', { allocated_devices: 2, allocated_vcpu_millicores: 3000, change_seq: 3 })]);
  view.settle(written);
  assert.equal(slots(view, 'b'), 2, 'the written row carries the placement once');
});

test('a tenant’s counts follow its holds: a release takes the device back, a settle keeps it', () => {
  const view = new FleetView([row('a')]);
  view.setTenantCounts('t1', new Map([['a', 2]]), 0);
  const counts = () => view.snapshot().tenants.get('t1')?.get(0);
  assert.equal(counts(), 2);
  view.release(view.hold('a', ask, 't1'));
  assert.equal(counts(), 2);
  view.settle(view.hold('a', ask, 't1'));
  assert.equal(counts(), 3);
  assert.equal(view.snapshot(true).tenants.get('t1')?.get(0), 3, 'both snapshots share the counts');
});

test('hosts joining or leaving re-index the snapshots; a deleted host’s older row stays out', () => {
  const view = new FleetView([row('a')]);
  view.apply([row('c', { change_seq: 2 })]);
  assert.deepEqual(view.snapshot().ids, ['a', 'c']);
  view.remove('a', 3);
  assert.deepEqual(view.snapshot().ids, ['c']);
  assert.equal(
    view.apply([row('a', { change_seq: 1, allocated_devices: 1 })]),
    0,
    'read before its deletion',
  );
  assert.deepEqual(view.snapshot().ids, ['c']);
  view.apply([row('c', { arch: 'riscv64', change_seq: 4 })]);
  assert.equal(view.size, 0, 'an architecture no image runs on leaves the schedulable set');
  assert.equal(view.seqOf('c'), 4, 'but its change is known');
  assert.equal(view.reindexes, 3);
});
