// The control plane's DesiredDevice, mapped once onto the agent's own terms.
import { agentv1 } from '@cphone/proto';
import type { DeviceSpec, GpuMode as RuntimeGpuMode } from '../runtime/index.js';

export type Power = 'running' | 'stopped';
export type Restart = 'always' | 'on-failure' | 'never';

/** One device as it should be, in the agent's terms. */
export interface Desired {
  readonly deviceId: string;
  readonly tenantId: string;
  readonly specRevision: number;
  readonly power: Power;
  readonly restartPolicy: Restart;
  readonly restartGeneration: number;
  /** What the runtime is asked to create. */
  readonly spec: DeviceSpec;
}

/** Screen used when the control plane sends none (Redroid's own default). */
export const DEFAULT_SCREEN = Object.freeze({ width: 720, height: 1280, dpi: 320, fps: 30 });

const GPU: Record<agentv1.GpuMode, RuntimeGpuMode> = {
  [agentv1.GpuMode.UNSPECIFIED]: 'guest',
  [agentv1.GpuMode.GUEST]: 'guest',
  [agentv1.GpuMode.HOST]: 'host',
  [agentv1.GpuMode.AUTO]: 'auto',
};

const RESTART: Record<agentv1.RestartPolicy, Restart> = {
  [agentv1.RestartPolicy.UNSPECIFIED]: 'always',
  [agentv1.RestartPolicy.ALWAYS]: 'always',
  [agentv1.RestartPolicy.ON_FAILURE]: 'on-failure',
  [agentv1.RestartPolicy.NEVER]: 'never',
};

/** uint64 on the wire; revisions and generations stay far below 2^53. */
function small(value: bigint): number {
  return Number(BigInt.asUintN(53, value));
}

export function desiredFromProto(device: agentv1.DesiredDevice): Desired {
  const spec = device.spec;
  const screen = spec?.screen;
  const specRevision = small(device.specRevision);
  return {
    deviceId: device.deviceId,
    tenantId: device.tenantId,
    specRevision,
    power: device.powerState === agentv1.PowerState.STOPPED ? 'stopped' : 'running',
    restartPolicy: RESTART[device.restartPolicy] ?? 'always',
    restartGeneration: small(device.restartGeneration),
    spec: {
      deviceId: device.deviceId,
      tenantId: device.tenantId,
      specRevision,
      image: spec?.imageRef ?? '',
      vcpuMillicores: spec?.vcpuMillicores ?? 0,
      memoryMib: spec?.memoryMib ?? 0,
      storageGib: spec?.storageGib ?? 0,
      screen: {
        width: screen?.widthPx || DEFAULT_SCREEN.width,
        height: screen?.heightPx || DEFAULT_SCREEN.height,
        dpi: screen?.dpi || DEFAULT_SCREEN.dpi,
        fps: screen?.fps || DEFAULT_SCREEN.fps,
      },
      gpuMode: GPU[spec?.gpuMode ?? agentv1.GpuMode.UNSPECIFIED] ?? 'guest',
      properties: { ...(spec?.properties ?? {}) },
      labels: {},
    },
  };
}

/** The fields whose change ends a halt (crash loop, NEVER policy): a new instruction from upstream. */
export function desiredKey(desired: Desired): string {
  return `${desired.specRevision}/${desired.restartGeneration}/${desired.power}`;
}
