import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { place } from './place.js';
import { buildSnapshot, type Snapshot } from './snapshot.js';
import { withAssignments } from './snapshot-update.js';
import { host, request } from './test-hosts.js';
import type { HostInput, PlacementRequest, Resources } from './types.js';

function hostIds(snapshot: Snapshot, req: PlacementRequest): string[] {
  const placed = place(snapshot, req);
  assert.equal(placed.ok, true, placed.ok ? '' : placed.message);
  return placed.ok ? placed.assignments.map((a) => a.hostId) : [];
}

/** Places single devices one request at a time, committing each before the next, as the applier would. */
function sequential(hosts: HostInput[], req: PlacementRequest, times: number): string[] {
  let snapshot = buildSnapshot(hosts);
  const chosen: string[] = [];
  for (let k = 0; k < times; k++) {
    const placed = place(snapshot, req);
    assert.equal(placed.ok, true);
    if (!placed.ok) break;
    chosen.push(placed.assignments[0]!.hostId);
    snapshot = withAssignments(snapshot, req, placed.assignments);
  }
  return chosen;
}

const used = (cpu: number, mem: number, devices: number): Resources => ({
  vcpuMillicores: cpu,
  memoryMib: mem,
  storageGib: 0,
  devices,
});

describe('strategies', () => {
  const busy = host('h-busy', { allocated: used(4000, 8192, 2) });
  const idle = host('h-idle');

  it('binpack prefers the fuller host', () => {
    assert.deepEqual(hostIds(buildSnapshot([idle, busy]), request()), ['h-busy']);
  });

  it('spread prefers the emptier host', () => {
    assert.deepEqual(hostIds(buildSnapshot([idle, busy]), request({ strategy: 'spread' })), ['h-idle']);
  });

  it('binpack fills one host before it starts another', () => {
    // Each host holds four 2000m / 4096 MiB devices.
    const chosen = sequential([host('h1'), host('h2'), host('h3')], request(), 8);
    const first = chosen[0]!;
    assert.deepEqual(chosen.slice(0, 4), [first, first, first, first]);
    const second = chosen[4]!;
    assert.notEqual(second, first);
    assert.deepEqual(chosen.slice(4), [second, second, second, second]);
  });

  it('spread alternates between equal hosts', () => {
    const chosen = sequential([host('h1'), host('h2'), host('h3')], request({ strategy: 'spread' }), 6);
    assert.deepEqual(
      [...new Set(chosen.slice(0, 3))].sort(),
      ['h1', 'h2', 'h3'],
      `first three on distinct hosts: ${chosen.join(',')}`,
    );
    assert.deepEqual(
      [...new Set(chosen.slice(3))].sort(),
      ['h1', 'h2', 'h3'],
      `next three on distinct hosts: ${chosen.join(',')}`,
    );
  });

  it('ties go to the lowest host id', () => {
    assert.deepEqual(hostIds(buildSnapshot([host('h3'), host('h1'), host('h2')]), request()), ['h1']);
  });

  it('weights override the strategy', () => {
    const req = request({ weights: { binpack: 0, spread: 1 } });
    assert.deepEqual(hostIds(buildSnapshot([idle, busy]), req), ['h-idle']);
  });
});

describe('tenant spread', () => {
  it('prefers a host with fewer of the tenant’s phones over a fuller one', () => {
    const crowded = host('h-crowded', { allocated: used(4000, 8192, 2), tenantDevices: { 'tenant-a': 2 } });
    const empty = host('h-empty');
    const snapshot = buildSnapshot([crowded, empty]);
    assert.deepEqual(hostIds(snapshot, request()), ['h-crowded']);
    assert.deepEqual(hostIds(snapshot, request({ spreadTenant: true })), ['h-empty']);
  });

  it('counts only the requesting tenant', () => {
    const others = host('h1', { allocated: used(4000, 8192, 2), tenantDevices: { 'tenant-b': 2 } });
    assert.deepEqual(hostIds(buildSnapshot([others, host('h2')]), request({ spreadTenant: true })), ['h1']);
  });

  it('spreads a batch of one tenant across hosts', () => {
    const hosts = [host('h1'), host('h2'), host('h3'), host('h4')];
    const ids = hostIds(buildSnapshot(hosts), request({ count: 4, spreadTenant: true }));
    assert.deepEqual([...ids].sort(), ['h1', 'h2', 'h3', 'h4']);
  });
});

describe('determinism', () => {
  const fleet = Array.from({ length: 300 }, (_, k) =>
    host(`h${String(k).padStart(3, '0')}`, {
      arch: k % 3 === 0 ? 'amd64' : 'arm64',
      state: k % 11 === 0 ? 'cordoned' : 'ready',
      allocated: used((k * 700) % 6000, (k * 1300) % 12000, k % 3),
    }),
  );

  it('gives the same placement for the same inputs, whatever the input order', () => {
    const req = request({ count: 20, strategy: 'spread', spreadTenant: true, seed: 'req-42' });
    const a = place(buildSnapshot(fleet), req);
    const b = place(buildSnapshot([...fleet].reverse()), req);
    assert.deepEqual(a, b);
    assert.equal(a.ok, true);
  });

  it('a different seed moves a spread decision, and only a spread one', () => {
    const snapshot = buildSnapshot(fleet);
    const spreadA = hostIds(snapshot, request({ strategy: 'spread', seed: 'a' }));
    const spreadB = hostIds(snapshot, request({ strategy: 'spread', seed: 'b' }));
    assert.notDeepEqual(spreadA, spreadB);
    assert.deepEqual(hostIds(snapshot, request({ seed: 'a' })), hostIds(snapshot, request({ seed: 'b' })));
  });

  it('does not modify the snapshot', () => {
    const snapshot = buildSnapshot(fleet);
    const before = snapshot.allocated.cpu.slice();
    place(snapshot, request({ count: 50 }));
    assert.deepEqual(snapshot.allocated.cpu, before);
  });
});

describe('candidate sampling', () => {
  const fleet = Array.from({ length: 1000 }, (_, k) => host(`h${String(k).padStart(4, '0')}`));

  it('scores at most candidateLimit feasible hosts', () => {
    const placed = place(buildSnapshot(fleet), request({ candidateLimit: 7 }));
    assert.equal(placed.metrics.candidatesScored, 7);
    assert.equal(placed.metrics.hostsEvaluated, 7);
  });

  it('finds the one feasible host however far into the order it sits, skipping full blocks', () => {
    const full: HostInput[] = fleet.map((h) => ({ ...h, allocated: used(8000, 16384, 4) }));
    full[613] = host('h0613');
    const placed = place(buildSnapshot(full), request());
    assert.deepEqual(placed.ok && placed.assignments, [{ index: 0, hostId: 'h0613' }]);
    assert.ok(placed.metrics.hostsSkipped > 900, `skipped ${placed.metrics.hostsSkipped}`);
    assert.equal(placed.metrics.hostsEvaluated + placed.metrics.hostsSkipped, 1000);
  });

  it('skips blocks whose only room is on hosts of another arch', () => {
    const mixed: HostInput[] = fleet.map((h, k) =>
      k % 2 === 0 ? { ...h, allocated: used(8000, 16384, 4) } : { ...h, arch: 'amd64' },
    );
    mixed[614] = host('h0614');
    const placed = place(buildSnapshot(mixed), request());
    assert.deepEqual(placed.ok && placed.assignments, [{ index: 0, hostId: 'h0614' }]);
    assert.ok(placed.metrics.hostsSkipped > 900, `skipped ${placed.metrics.hostsSkipped}`);
  });
});
