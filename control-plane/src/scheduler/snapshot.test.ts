import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from './errors.js';
import { place } from './place.js';
import { buildSnapshot } from './snapshot.js';
import { withAssignments } from './snapshot-update.js';
import { host, request } from './test-hosts.js';

describe('buildSnapshot', () => {
  it('orders hosts by id and folds overcommit into capacity', () => {
    const s = buildSnapshot([host('b', { overcommit: { cpu: 2, memory: 1.5 } }), host('a')]);
    assert.deepEqual(s.ids, ['a', 'b']);
    assert.deepEqual([...s.capacity.cpu], [8000, 16000]);
    assert.deepEqual([...s.capacity.memory], [16384, 24576]);
    assert.deepEqual([...s.capacity.storage], [500, 500]);
  });

  it('visits every host once, in the same order for the same seed', () => {
    const hosts = Array.from({ length: 200 }, (_, k) => host(`h${k}`));
    const a = buildSnapshot(hosts);
    assert.deepEqual(
      [...a.order].sort((x, y) => x - y),
      [...Array(200).keys()],
    );
    assert.deepEqual(a.order, buildSnapshot(hosts).order);
    assert.notDeepEqual(a.order, buildSnapshot(hosts, { seed: 7 }).order);
  });

  it('rejects duplicate ids and bad numbers, naming the field', () => {
    assert.throws(() => buildSnapshot([host('a'), host('a')]), { field: 'hosts[a].id', value: 'a' });
    assert.throws(() => buildSnapshot([host('a', { overcommit: { cpu: 0, memory: 1 } })]), {
      field: 'hosts[a].overcommit.cpu',
      value: 0,
    });
    assert.throws(
      () =>
        buildSnapshot([
          host('a', { capacity: { vcpuMillicores: -1, memoryMib: 1, storageGib: 1, devices: 1 } }),
        ]),
      (err: unknown) =>
        err instanceof InvalidArgumentError && err.field === 'hosts[a].capacity.vcpuMillicores',
    );
  });
});

describe('withAssignments', () => {
  it('allocates assigned devices in a new snapshot and leaves the old one alone', () => {
    const before = buildSnapshot([host('h1'), host('h2')]);
    const req = request({ count: 2 });
    const placed = place(before, req);
    assert.equal(placed.ok, true);
    if (!placed.ok) return;
    const after = withAssignments(before, req, placed.assignments);
    const target = after.indexById.get(placed.assignments[0]!.hostId)!;
    assert.equal(after.allocated.cpu[target], 4000);
    assert.equal(after.allocated.slots[target], 2);
    assert.equal(after.tenants.get('tenant-a')?.get(target), 2);
    assert.equal(before.allocated.cpu[target], 0);
    assert.equal(before.tenants.get('tenant-a'), undefined);
  });

  it('keeps the capacity index exact so full hosts are skipped', () => {
    let s = buildSnapshot([
      host('h1', { capacity: { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32, devices: 1 } }),
    ]);
    const req = request();
    const placed = place(s, req);
    assert.equal(placed.ok, true);
    if (placed.ok) s = withAssignments(s, req, placed.assignments);
    const again = place(s, req);
    assert.equal(again.ok, false);
    assert.equal(again.metrics.hostsSkipped, 1);
    if (!again.ok) assert.deepEqual(again.reasons, { vcpu: 1 });
  });

  it('rejects an assignment to an unknown host', () => {
    assert.throws(
      () => withAssignments(buildSnapshot([host('h1')]), request(), [{ index: 0, hostId: 'nope' }]),
      {
        field: 'assignments[0].hostId',
      },
    );
  });
});
