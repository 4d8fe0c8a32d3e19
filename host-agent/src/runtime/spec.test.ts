import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { InvalidSpecError } from './errors.js';
import { validateDeviceSpec } from './spec.js';
import type { DeviceSpec } from './types.js';

const valid: DeviceSpec = {
  deviceId: 'dev-1',
  tenantId: 't1',
  specRevision: 0,
  image: 'redroid/redroid:12.0.0-latest',
  vcpuMillicores: 1000,
  memoryMib: 2048,
  storageGib: 8,
  screen: { width: 720, height: 1280, dpi: 320, fps: 30 },
  gpuMode: 'guest',
  properties: { 'ro.product.model': 'Pixel 7' },
  labels: {},
};

function rejects(spec: DeviceSpec, field: string): void {
  assert.throws(
    () => validateDeviceSpec(spec),
    (err: unknown) => err instanceof InvalidSpecError && err.field === field && err.message.includes(field),
  );
}

describe('validateDeviceSpec', () => {
  it('accepts a valid spec', () => {
    assert.doesNotThrow(() => validateDeviceSpec(valid));
  });

  // What the phone is made of is the shared contract's to judge (proto/src/device-spec.test.ts holds
  // its cases); these show the runtime applies it, with the same field names as the control plane.
  it('names the offending field', () => {
    rejects({ ...valid, deviceId: '../etc' }, 'deviceId');
    rejects({ ...valid, specRevision: -1 }, 'specRevision');
    rejects({ ...valid, vcpuMillicores: 0.5 }, 'vcpu_millicores');
    rejects({ ...valid, screen: { ...valid.screen, fps: 0 } }, 'screen.fps');
    rejects({ ...valid, gpuMode: 'vulkan' as DeviceSpec['gpuMode'] }, 'gpu_mode');
    rejects({ ...valid, properties: { 'persist.sys.x': '1' } }, 'properties["persist.sys.x"]');
    rejects({ ...valid, properties: { 'ro.x': 'a\nb' } }, 'properties["ro.x"]');
    rejects({ ...valid, screen: { ...valid.screen, dpi: 59 } }, 'screen.dpi');
    rejects({ ...valid, image: ' ' }, 'image_ref');
    rejects({ ...valid, labels: { 'dev.cphone.managed': 'false' } }, 'labels[dev.cphone.managed]');
  });
});
