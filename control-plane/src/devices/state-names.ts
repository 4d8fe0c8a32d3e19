// A device state's proto value and its name in the store, both ways.
import { DeviceState } from '@cphone/proto';
import type { DeviceStateName } from '../store/schema.js';

const TO_PROTO: Record<DeviceStateName, DeviceState> = {
  pending: DeviceState.PENDING,
  scheduled: DeviceState.SCHEDULED,
  creating: DeviceState.CREATING,
  booting: DeviceState.BOOTING,
  running: DeviceState.RUNNING,
  stopping: DeviceState.STOPPING,
  stopped: DeviceState.STOPPED,
  deleting: DeviceState.DELETING,
  deleted: DeviceState.DELETED,
  error: DeviceState.ERROR,
  lost: DeviceState.LOST,
};

export function stateToProto(state: DeviceStateName): DeviceState {
  return TO_PROTO[state];
}

/** undefined for UNSPECIFIED or an unknown number. */
export function stateFromProto(state: DeviceState): DeviceStateName | undefined {
  return FROM_PROTO.get(state);
}

const FROM_PROTO = new Map(
  (Object.entries(TO_PROTO) as [DeviceStateName, DeviceState][]).map(([name, value]) => [value, name]),
);
