import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from './errors.js';
import { explain } from './explain.js';
import { place } from './place.js';
import { buildSnapshot } from './snapshot.js';
import { host, request } from './test-hosts.js';
import type { PlacementRequest } from './types.js';

const snapshot = buildSnapshot([host('h1')]);

function rejects(req: PlacementRequest, field: string, value: unknown): void {
  for (const run of [place, explain]) {
    assert.throws(
      () => run(snapshot, req),
      (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.equal(err.field, field);
        assert.deepEqual(err.value, value);
        assert.match(err.message, new RegExp(`^${field.replace(/[.[\]]/g, '\\$&')} `));
        return true;
      },
    );
  }
}

describe('request validation', () => {
  it('rejects a count of 0', () => rejects(request({ count: 0 }), 'count', 0));
  it('rejects a count above 100', () => rejects(request({ count: 101 }), 'count', 101));
  it('rejects a fractional count', () => rejects(request({ count: 1.5 }), 'count', 1.5));

  it('rejects negative resources, naming the field', () => {
    rejects(
      request({ resources: { vcpuMillicores: -1, memoryMib: 1, storageGib: 1, devices: 1 } }),
      'resources.vcpuMillicores',
      -1,
    );
    rejects(
      request({ resources: { vcpuMillicores: 1, memoryMib: -2, storageGib: 1, devices: 1 } }),
      'resources.memoryMib',
      -2,
    );
    rejects(
      request({ resources: { vcpuMillicores: 1, memoryMib: 1, storageGib: -3, devices: 1 } }),
      'resources.storageGib',
      -3,
    );
  });

  it('rejects non-finite resources', () => {
    rejects(
      request({ resources: { vcpuMillicores: Number.NaN, memoryMib: 1, storageGib: 1, devices: 1 } }),
      'resources.vcpuMillicores',
      Number.NaN,
    );
  });

  it('rejects an empty tenant and image', () => {
    rejects(request({ tenantId: '' }), 'tenantId', '');
    rejects(request({ image: { id: '' } }), 'image.id', '');
  });

  it('rejects an unknown strategy, arch, weight or candidate limit', () => {
    rejects(request({ strategy: 'random' as 'spread' }), 'strategy', 'random');
    rejects(request({ image: { id: 'x', arch: ['riscv' as 'arm64'] } }), 'image.arch[0]', 'riscv');
    rejects(request({ weights: { binpack: -1 } }), 'weights.binpack', -1);
    rejects(request({ candidateLimit: 0 }), 'candidateLimit', 0);
  });

  it('says what was expected and what came', () => {
    assert.throws(() => place(snapshot, request({ count: 101 })), {
      name: 'InvalidArgumentError',
      code: 'invalid_argument',
      message: 'count must be an integer in 1..100, got 101',
    });
  });
});
