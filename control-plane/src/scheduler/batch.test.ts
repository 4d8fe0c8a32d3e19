import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { place } from './place.js';
import { buildSnapshot } from './snapshot.js';
import { host, request } from './test-hosts.js';

describe('batch placement', () => {
  // 8000m cpu: four 2000m devices fit, the fifth does not.
  const small = host('h1', {
    capacity: { vcpuMillicores: 8000, memoryMib: 65536, storageGib: 1000, devices: 16 },
  });

  it('places a batch that fits, in device order', () => {
    const placed = place(buildSnapshot([small]), request({ count: 4 }));
    assert.equal(placed.ok, true);
    if (placed.ok)
      assert.deepEqual(
        placed.assignments.map((a) => a.index),
        [0, 1, 2, 3],
      );
  });

  it('is all or nothing: when the 5th of 5 does not fit there is no plan', () => {
    const placed = place(buildSnapshot([small, host('h2', { state: 'draining' })]), request({ count: 5 }));
    assert.equal(placed.ok, false);
    assert.ok(!('assignments' in placed));
    if (placed.ok) return;
    assert.equal(placed.failedIndex, 4);
    assert.deepEqual(placed.reasons, { 'host-ready': 1, vcpu: 1 });
    assert.equal(
      placed.message,
      'device 5 of 5 fits no host: 2 hosts evaluated; 1 excluded by host-ready, 1 by vcpu',
    );
  });

  it('accounts slots within the batch', () => {
    const twoSlots = host('h1', {
      capacity: { vcpuMillicores: 64000, memoryMib: 131072, storageGib: 4000, devices: 2 },
    });
    const placed = place(buildSnapshot([twoSlots]), request({ count: 3 }));
    assert.equal(placed.ok, false);
    if (!placed.ok) assert.deepEqual(placed.reasons, { slots: 1 });
  });

  it('moves on to the next host once the batch has filled the first', () => {
    const placed = place(buildSnapshot([small, host('h2')]), request({ count: 6 }));
    assert.equal(placed.ok, true);
    if (!placed.ok) return;
    const perHost = new Map<string, number>();
    for (const a of placed.assignments) perHost.set(a.hostId, (perHost.get(a.hostId) ?? 0) + 1);
    // Bin-pack fills one host with four devices, the other takes the remaining two.
    assert.deepEqual([...perHost.values()].sort(), [2, 4]);
  });

  it('sums metrics over the devices of the batch', () => {
    const placed = place(buildSnapshot([small, host('h2')]), request({ count: 3 }));
    assert.equal(placed.metrics.hostsEvaluated, 6);
    assert.equal(placed.metrics.candidatesScored, 6);
  });

  it('fails with the reasons of an empty fleet', () => {
    const placed = place(buildSnapshot([]), request());
    assert.equal(placed.ok, false);
    if (!placed.ok) assert.equal(placed.message, 'device 1 of 1 fits no host: the snapshot has no hosts');
  });
});
