import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import type { AdbEndpoint, RuntimeDevice } from '../runtime/index.js';

/** What the agent last reported about one device. */
export interface Observation {
  readonly state: agentv1.DeviceState;
  readonly reason: string;
  readonly message: string;
  readonly containerId: string;
  readonly adbEndpoint: string;
  readonly startedAt: Date | undefined;
  readonly specRevision: number;
  readonly restartGeneration: number;
  readonly restartCount: number;
}

export function endpointString(adb: AdbEndpoint | undefined): string {
  if (adb === undefined) return '';
  return adb.host.includes(':') ? `[${adb.host}]:${adb.port}` : `${adb.host}:${adb.port}`;
}

/** The state a runtime device is in before the agent knows more (e.g. whether Android has booted). */
export function stateOfRuntimeDevice(actual: RuntimeDevice, booted: boolean): agentv1.DeviceState {
  switch (actual.state) {
    case 'running':
      return booted ? agentv1.DeviceState.RUNNING : agentv1.DeviceState.BOOTING;
    case 'restarting':
      return agentv1.DeviceState.BOOTING;
    case 'removing':
      return agentv1.DeviceState.DELETING;
    case 'created':
      return agentv1.DeviceState.STOPPED;
    case 'exited':
      return actual.exitCode === undefined || actual.exitCode === 0
        ? agentv1.DeviceState.STOPPED
        : agentv1.DeviceState.ERROR;
    default:
      return agentv1.DeviceState.ERROR;
  }
}

/** Observation of a device the agent only knows from the runtime (adoption, inventory). */
export function observationOf(actual: RuntimeDevice, booted: boolean): Observation {
  const state = stateOfRuntimeDevice(actual, booted);
  const live = state === agentv1.DeviceState.BOOTING || state === agentv1.DeviceState.RUNNING;
  return {
    state,
    reason: state === agentv1.DeviceState.ERROR ? 'EXITED' : '',
    message: state === agentv1.DeviceState.ERROR ? `exited with code ${actual.exitCode ?? 'unknown'}` : '',
    containerId: actual.runtimeId,
    adbEndpoint: live ? endpointString(actual.adb) : '',
    startedAt: live ? actual.startedAt : undefined,
    specRevision: actual.specRevision,
    restartGeneration: 0,
    restartCount: 0,
  };
}

export function sameObservation(a: Observation, b: Observation): boolean {
  return (
    a.state === b.state &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.containerId === b.containerId &&
    a.adbEndpoint === b.adbEndpoint &&
    a.specRevision === b.specRevision &&
    a.restartGeneration === b.restartGeneration &&
    a.restartCount === b.restartCount
  );
}

export function toObservedDevice(
  deviceId: string,
  tenantId: string,
  o: Observation,
  observedAt: Date,
): agentv1.ObservedDevice {
  return create(agentv1.ObservedDeviceSchema, {
    deviceId,
    tenantId,
    state: o.state,
    reason: o.reason,
    message: o.message,
    containerId: o.containerId,
    adbEndpoint: o.adbEndpoint,
    specRevision: BigInt(o.specRevision),
    restartGeneration: BigInt(o.restartGeneration),
    restartCount: o.restartCount,
    observedAt: timestampFromDate(observedAt),
    ...(o.startedAt !== undefined ? { startedAt: timestampFromDate(o.startedAt) } : {}),
  });
}
