import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from './errors.js';
import { place } from './place.js';
import { buildSnapshot } from './snapshot.js';
import { addAllocation, setHost, tenantCounts, withAssignments } from './snapshot-update.js';
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

describe('in-place changes', () => {
  it('place() leaves the snapshot as it found it, batches included', () => {
    const s = buildSnapshot([
      host('h1'),
      host('h2', { allocated: { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32, devices: 1 } }),
    ]);
    const before = JSON.stringify([s.allocated, s.blockFree]);
    assert.equal(place(s, request({ count: 6 })).ok, true);
    assert.equal(place(s, request({ count: 20 })).ok, false);
    assert.equal(JSON.stringify([s.allocated, s.blockFree]), before);
  });

  it('setHost and addAllocation change one host and keep the capacity index exact', () => {
    const s = buildSnapshot([host('h1'), host('h2')]);
    const h2 = s.indexById.get('h2')!;
    setHost(
      s,
      host('h2', {
        state: 'cordoned',
        capacity: { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 100, devices: 2 },
      }),
    );
    assert.equal(s.ready[h2], 0);
    assert.equal(s.capacity.cpu[h2], 4000);
    const placed = place(s, request({ count: 5 }));
    assert.equal(placed.ok, false, 'h1 holds four, h2 takes none while cordoned');
    // h1 fills up: the index now skips its block.
    addAllocation(s, s.indexById.get('h1')!, {
      vcpuMillicores: 8000,
      memoryMib: 0,
      storageGib: 0,
      devices: 1,
    });
    const full = place(s, request());
    assert.equal(full.ok, false);
    assert.equal(full.metrics.hostsSkipped, 2);
    assert.throws(() => setHost(s, host('nope')), { field: 'host.id' });
    assert.throws(() => setHost(s, host('h1', { overcommit: { cpu: 0, memory: 1 } })), {
      field: 'hosts[h1].overcommit.cpu',
    });
    assert.equal(s.capacity.cpu[s.indexById.get('h1')!], 8000, 'a refused input changes nothing');
  });

  it('tenantCounts hands the owner the map place() reads for tenant spread', () => {
    const s = buildSnapshot([host('h1'), host('h2')]);
    tenantCounts(s, 'tenant-a').set(s.indexById.get('h1')!, 3);
    const placed = place(s, request({ strategy: 'spread', spreadTenant: true }));
    assert.equal(placed.ok && placed.assignments[0]?.hostId, 'h2');
  });
});
