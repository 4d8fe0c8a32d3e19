import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explain } from './explain.js';
import { place } from './place.js';
import { buildSnapshot } from './snapshot.js';
import { host, request } from './test-hosts.js';
import type { FilterName, HostInput, PlacementRequest } from './types.js';

/** Places against one host that should be excluded by `filter`; returns that host's reason. */
function rejection(h: HostInput, req: PlacementRequest, filter: FilterName): string {
  const snapshot = buildSnapshot([h]);
  const placed = place(snapshot, req);
  assert.equal(placed.ok, false);
  if (!placed.ok) assert.deepEqual(placed.reasons, { [filter]: 1 });
  const [explained] = explain(snapshot, req).hosts;
  assert.equal(explained?.failedFilter, filter);
  return explained?.reason ?? '';
}

describe('filters', () => {
  for (const state of ['cordoned', 'draining', 'unreachable', 'offline'] as const) {
    it(`host-ready rejects a ${state} host`, () => {
      assert.equal(
        rejection(host('h1', { state }), request(), 'host-ready'),
        `host is ${state}, needs ready`,
      );
    });
  }

  it('architecture rejects a host the image does not run on', () => {
    const reason = rejection(host('h1', { arch: 'amd64' }), request(), 'architecture');
    assert.equal(reason, "host arch amd64 not among image android-14's [arm64]");
  });

  it('an image that names no arch runs anywhere', () => {
    const placed = place(
      buildSnapshot([host('h1', { arch: 'amd64' })]),
      request({ image: { id: 'android-14' } }),
    );
    assert.equal(placed.ok, true);
  });

  it('image-compatibility rejects a host that does not offer the image', () => {
    const reason = rejection(
      host('h1', { images: ['android-12', 'android-13'] }),
      request(),
      'image-compatibility',
    );
    assert.equal(reason, 'host does not offer image android-14 (offers android-12, android-13)');
  });

  it('image-compatibility rejects a host without a label the image requires', () => {
    const req = request({ image: { id: 'android-14', arch: ['arm64'], requiredLabels: { binder: 'true' } } });
    const reason = rejection(host('h1'), req, 'image-compatibility');
    assert.equal(reason, 'image android-14 requires label binder=true, host has binder=<unset>');
  });

  it('label-selector rejects a host whose label differs', () => {
    const reason = rejection(host('h1'), request({ nodeSelector: { region: 'us-east' } }), 'label-selector');
    assert.equal(reason, 'node selector wants region=us-east, host has region=eu-west');
  });

  it('vcpu rejects when free cpu is below the ask, naming capacity, overcommit and allocation', () => {
    const h = host('h1', {
      overcommit: { cpu: 1.5, memory: 1 },
      allocated: { vcpuMillicores: 11000, memoryMib: 0, storageGib: 0, devices: 1 },
    });
    const reason = rejection(h, request(), 'vcpu');
    assert.equal(reason, 'vcpu: asks 2000m, free 1000m (8000m x overcommit 1.5 = 12000m, allocated 11000m)');
  });

  it('memory rejects when free memory is below the ask', () => {
    const h = host('h1', { allocated: { vcpuMillicores: 0, memoryMib: 14000, storageGib: 0, devices: 1 } });
    const reason = rejection(h, request(), 'memory');
    assert.equal(
      reason,
      'memory: asks 4096 MiB, free 2384 MiB (16384 MiB x overcommit 1 = 16384 MiB, allocated 14000 MiB)',
    );
  });

  it('storage rejects when free storage is below the ask', () => {
    const h = host('h1', { allocated: { vcpuMillicores: 0, memoryMib: 0, storageGib: 480, devices: 1 } });
    const reason = rejection(h, request(), 'storage');
    assert.equal(reason, 'storage: asks 32 GiB, free 20 GiB (capacity 500 GiB, allocated 480 GiB)');
  });

  it('slots rejects a host whose device slots are all used', () => {
    const h = host('h1', {
      capacity: { vcpuMillicores: 64000, memoryMib: 131072, storageGib: 4000, devices: 2 },
      allocated: { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 64, devices: 2 },
    });
    assert.equal(rejection(h, request(), 'slots'), 'slots: 2 of 2 device slots used');
  });

  it('reports the first failing filter in order', () => {
    const h = host('h1', { state: 'cordoned', arch: 'amd64', labels: {} });
    assert.equal(
      rejection(h, request({ nodeSelector: { gpu: 'true' } }), 'host-ready'),
      'host is cordoned, needs ready',
    );
  });
});

describe('overcommit', () => {
  const tight = host('h1', {
    capacity: { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 500, devices: 16 },
    allocated: { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 32, devices: 2 },
  });

  it('without overcommit a full host takes nothing more', () => {
    const placed = place(buildSnapshot([tight]), request());
    assert.equal(placed.ok, false);
    if (!placed.ok) assert.deepEqual(placed.reasons, { vcpu: 1 });
  });

  it('cpu and memory ratios multiply capacity', () => {
    const roomy = { ...tight, overcommit: { cpu: 2, memory: 2 } };
    const placed = place(buildSnapshot([roomy]), request());
    assert.deepEqual(placed.ok && placed.assignments, [{ index: 0, hostId: 'h1' }]);
  });

  it('a cpu ratio alone leaves memory binding', () => {
    const cpuOnly = { ...tight, overcommit: { cpu: 2, memory: 1 } };
    const placed = place(buildSnapshot([cpuOnly]), request());
    assert.equal(placed.ok, false);
    if (!placed.ok) assert.deepEqual(placed.reasons, { memory: 1 });
  });

  it('storage is never overcommitted', () => {
    const full = host('h1', {
      overcommit: { cpu: 4, memory: 4 },
      allocated: { vcpuMillicores: 0, memoryMib: 0, storageGib: 490, devices: 0 },
    });
    const placed = place(buildSnapshot([full]), request());
    assert.equal(placed.ok, false);
    if (!placed.ok) assert.deepEqual(placed.reasons, { storage: 1 });
  });
});
