import { InvalidSpecError } from './errors.js';
import { RESERVED_LABEL_PREFIX } from './labels.js';
import type { DeviceSpec } from './types.js';

// Device ids become container, volume and host names: keep them to what all three accept.
const DEVICE_ID = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
const PROPERTY_KEY = /^ro\.[A-Za-z0-9_.-]+$/;
// Each property is one argument of Android's init; control characters would split or corrupt it.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;
const GPU_MODES = new Set(['guest', 'host', 'auto']);

function positiveInt(field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value <= 0 || value > max) {
    throw new InvalidSpecError(field, value, `must be an integer in 1..${max}`);
  }
}

/** Throws `InvalidSpecError` naming the first field that no runtime could honour. */
export function validateDeviceSpec(spec: DeviceSpec): void {
  if (!DEVICE_ID.test(spec.deviceId)) {
    throw new InvalidSpecError('deviceId', spec.deviceId, 'must match ' + DEVICE_ID.source);
  }
  if (spec.tenantId.length === 0 || CONTROL.test(spec.tenantId)) {
    throw new InvalidSpecError('tenantId', spec.tenantId, 'must be non-empty printable text');
  }
  if (!Number.isSafeInteger(spec.specRevision) || spec.specRevision < 0) {
    throw new InvalidSpecError('specRevision', spec.specRevision, 'must be a non-negative integer');
  }
  if (spec.image.trim().length === 0) throw new InvalidSpecError('image', spec.image, 'must not be empty');
  positiveInt('vcpuMillicores', spec.vcpuMillicores, 1024_000);
  positiveInt('memoryMib', spec.memoryMib, 1024 * 1024);
  positiveInt('storageGib', spec.storageGib, 64 * 1024);
  positiveInt('screen.width', spec.screen.width, 8192);
  positiveInt('screen.height', spec.screen.height, 8192);
  positiveInt('screen.dpi', spec.screen.dpi, 1000);
  positiveInt('screen.fps', spec.screen.fps, 240);
  if (!GPU_MODES.has(spec.gpuMode)) {
    throw new InvalidSpecError('gpuMode', spec.gpuMode, 'must be one of guest, host, auto');
  }
  for (const [key, value] of Object.entries(spec.properties)) {
    if (!PROPERTY_KEY.test(key)) {
      throw new InvalidSpecError(`properties[${key}]`, key, 'keys must be ro.* system properties');
    }
    if (CONTROL.test(value)) {
      throw new InvalidSpecError(`properties[${key}]`, value, 'must not contain control characters');
    }
  }
  for (const key of Object.keys(spec.labels)) {
    if (key.startsWith(RESERVED_LABEL_PREFIX)) {
      throw new InvalidSpecError(`labels[${key}]`, key, `the ${RESERVED_LABEL_PREFIX} prefix is reserved`);
    }
  }
}
