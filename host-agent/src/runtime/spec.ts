import { create } from '@bufbuild/protobuf';
import { agentv1, deviceSpecViolation, GPU_MODES } from '@cphone/proto';
import { InvalidSpecError } from './errors.js';
import { RESERVED_LABEL_PREFIX } from './labels.js';
import type { DeviceSpec } from './types.js';

// Device ids become container, volume and host names: keep them to what all three accept.
const DEVICE_ID = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Throws `InvalidSpecError` naming the first field that no runtime could honour: what the phone is
 * made of is judged by the device-spec contract the control plane also applies (so both name the
 * same proto field), its identity and labels by the runtime's own naming rules.
 */
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
  if (!GPU_MODES.names.includes(spec.gpuMode)) {
    throw new InvalidSpecError('gpu_mode', spec.gpuMode, `must be one of ${GPU_MODES.names.join(', ')}`);
  }
  const violation = deviceSpecViolation(
    create(agentv1.DeviceSpecSchema, {
      imageRef: spec.image,
      vcpuMillicores: spec.vcpuMillicores,
      memoryMib: spec.memoryMib,
      storageGib: spec.storageGib,
      screen: {
        widthPx: spec.screen.width,
        heightPx: spec.screen.height,
        dpi: spec.screen.dpi,
        fps: spec.screen.fps,
      },
      gpuMode: GPU_MODES.agent(spec.gpuMode),
      properties: spec.properties,
    }),
  );
  if (violation) throw new InvalidSpecError(violation.field, violation.value, violation.reason);
  for (const key of Object.keys(spec.labels)) {
    if (key.startsWith(RESERVED_LABEL_PREFIX)) {
      throw new InvalidSpecError(`labels[${key}]`, key, `the ${RESERVED_LABEL_PREFIX} prefix is reserved`);
    }
  }
}
