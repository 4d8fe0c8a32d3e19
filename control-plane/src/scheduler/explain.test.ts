import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explain } from './explain.js';
import { place } from './place.js';
import { buildSnapshot } from './snapshot.js';
import { host, request } from './test-hosts.js';

describe('explain', () => {
  const snapshot = buildSnapshot([
    host('h-cordoned', { state: 'cordoned' }),
    host('h-amd', { arch: 'amd64' }),
    host('h-us', { labels: { region: 'us-east' } }),
    host('h-busy', { allocated: { vcpuMillicores: 4000, memoryMib: 8192, storageGib: 64, devices: 2 } }),
    host('h-idle', { tenantDevices: { 'tenant-a': 1 } }),
  ]);
  const req = request({ nodeSelector: { region: 'eu-west' }, spreadTenant: true });

  it('lists every host in id order with its verdict', () => {
    const out = explain(snapshot, req);
    assert.deepEqual(
      out.hosts.map((h) => [h.hostId, h.feasible, h.failedFilter]),
      [
        ['h-amd', false, 'architecture'],
        ['h-busy', true, undefined],
        ['h-cordoned', false, 'host-ready'],
        ['h-idle', true, undefined],
        ['h-us', false, 'label-selector'],
      ],
    );
    assert.equal(out.hosts[2]?.reason, 'host is cordoned, needs ready');
    assert.deepEqual(out.reasons, { 'host-ready': 1, architecture: 1, 'label-selector': 1 });
  });

  it('breaks each feasible host’s score down per scorer', () => {
    const out = explain(snapshot, req);
    const busy = out.hosts.find((h) => h.hostId === 'h-busy');
    const idle = out.hosts.find((h) => h.hostId === 'h-idle');
    assert.deepEqual(out.weights, { binpack: 1, spread: 0, 'tenant-spread': 1 });
    // h-busy after placement: 6000/8000 cpu and 12288/16384 memory.
    assert.deepEqual(busy?.scores, { binpack: 0.75, spread: 0.25, 'tenant-spread': 1 });
    assert.equal(busy?.score, 1.75);
    assert.deepEqual(idle?.scores, { binpack: 0.25, spread: 0.75, 'tenant-spread': 0.5 });
    assert.equal(idle?.score, 0.75);
  });

  it('names the host place() chooses and marks the hosts it scored', () => {
    const out = explain(snapshot, req);
    const placed = place(snapshot, req);
    assert.equal(out.chosenHostId, 'h-busy');
    assert.deepEqual(placed.ok && placed.assignments, [{ index: 0, hostId: 'h-busy' }]);
    assert.deepEqual(
      out.hosts.filter((h) => h.candidate).map((h) => h.hostId),
      ['h-busy', 'h-idle'],
    );
  });

  it('shows a feasible host left unscored when the candidate limit is reached', () => {
    const out = explain(snapshot, { ...req, candidateLimit: 1 });
    const feasible = out.hosts.filter((h) => h.feasible);
    assert.equal(feasible.length, 2);
    assert.equal(feasible.filter((h) => h.candidate).length, 1);
  });

  it('reports no chosen host when nothing fits', () => {
    const out = explain(snapshot, request({ nodeSelector: { region: 'ap-south' } }));
    assert.equal(out.chosenHostId, null);
    assert.equal(out.hosts.length, 5);
    assert.ok(out.hosts.every((h) => !h.feasible && h.reason !== undefined));
  });
});
