// The control plane's DesiredDevice, mapped once onto the agent's own terms.
import { clone, create } from '@bufbuild/protobuf';
import {
  agentv1,
  DEFAULT_SCREEN,
  deviceSpecViolation,
  GPU_MODES,
  POWER_STATES,
  type PowerStateName,
  RESTART_POLICIES,
  type RestartPolicyName,
  type SpecViolation,
} from '@cphone/proto';
import type { DeviceSpec } from '../runtime/index.js';

/** One device as it should be, in the agent's terms. */
export interface Desired {
  readonly deviceId: string;
  readonly tenantId: string;
  readonly specRevision: number;
  readonly power: PowerStateName;
  readonly restartPolicy: RestartPolicyName;
  readonly restartGeneration: number;
  /** What the runtime is asked to create. */
  readonly spec: DeviceSpec;
  /**
   * Why the spec breaks the device-spec contract, if it does: checked on the wire spec, before any
   * of it is lost in mapping (an enum value this agent does not know), and answered INVALID_SPEC.
   */
  readonly specViolation: SpecViolation | undefined;
}

/** uint64 on the wire; revisions and generations stay far below 2^53. */
function small(value: bigint): number {
  return Number(BigInt.asUintN(53, value));
}

/** The spec as sent, with the screen fields left 0 at their defaults (the proto's rule). */
function completed(sent: agentv1.DeviceSpec | undefined): agentv1.DeviceSpec {
  const spec = sent ? clone(agentv1.DeviceSpecSchema, sent) : create(agentv1.DeviceSpecSchema);
  const screen = spec.screen;
  spec.screen = create(agentv1.ScreenSpecSchema, {
    widthPx: screen?.widthPx || DEFAULT_SCREEN.widthPx,
    heightPx: screen?.heightPx || DEFAULT_SCREEN.heightPx,
    dpi: screen?.dpi || DEFAULT_SCREEN.dpi,
    fps: screen?.fps || DEFAULT_SCREEN.fps,
  });
  return spec;
}

export function desiredFromProto(device: agentv1.DesiredDevice): Desired {
  const spec = completed(device.spec);
  const screen = spec.screen ?? DEFAULT_SCREEN;
  const specRevision = small(device.specRevision);
  return {
    deviceId: device.deviceId,
    tenantId: device.tenantId,
    specRevision,
    power: POWER_STATES.name(device.powerState) ?? 'running',
    restartPolicy: RESTART_POLICIES.name(device.restartPolicy) ?? 'always',
    restartGeneration: small(device.restartGeneration),
    spec: {
      deviceId: device.deviceId,
      tenantId: device.tenantId,
      specRevision,
      image: spec.imageRef,
      vcpuMillicores: spec.vcpuMillicores,
      memoryMib: spec.memoryMib,
      storageGib: spec.storageGib,
      screen: { width: screen.widthPx, height: screen.heightPx, dpi: screen.dpi, fps: screen.fps },
      gpuMode: GPU_MODES.name(spec.gpuMode) ?? 'guest',
      properties: { ...spec.properties },
      labels: {},
    },
    specViolation: deviceSpecViolation(spec),
  };
}

/** The fields whose change ends a halt (crash loop, NEVER policy): a new instruction from upstream. */
export function desiredKey(desired: Desired): string {
  return `${desired.specRevision}/${desired.restartGeneration}/${desired.power}`;
}
