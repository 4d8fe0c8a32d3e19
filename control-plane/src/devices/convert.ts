import { create } from '@bufbuild/protobuf';
import {
  type Device,
  type DeviceEvent,
  DeviceEventSchema,
  DeviceSchema,
  POWER_STATES,
  type PowerState,
  RESTART_POLICIES,
  type RestartPolicy,
} from '@cphone/proto';
import type { Selectable } from 'kysely';
import { compact, ts } from '../api/convert.js';
import { InvalidArgumentError } from '../errors.js';
import type { DeviceRow } from '../store/devices.js';
import type { DeviceEventTable } from '../store/schema.js';
import { placementToProto, specToProto } from './spec-columns.js';
import { stateToProto } from './state-names.js';

export type { DeviceRow };

type Power = DeviceRow['desired_power'];
type Restart = DeviceRow['restart_policy'];

/** UNSPECIFIED means RUNNING (the proto's create default). */
export function powerFromProto(value: PowerState, field: string): Power {
  const name = POWER_STATES.name(value);
  if (name === undefined) throw new InvalidArgumentError(field, value, 'is not a PowerState');
  return name;
}

/** UNSPECIFIED means ALWAYS. */
export function restartFromProto(value: RestartPolicy, field: string): Restart {
  const name = RESTART_POLICIES.name(value);
  if (name === undefined) throw new InvalidArgumentError(field, value, 'is not a RestartPolicy');
  return name;
}

export interface DeviceView {
  /** ADB endpoints and container image references are fleet internals: only operators see them. */
  readonly operator: boolean;
}

export function deviceToProto(row: DeviceRow, view: DeviceView): Device {
  return create(
    DeviceSchema,
    compact({
      deviceId: row.id,
      tenantId: row.tenant_id,
      displayName: row.display_name,
      labels: row.labels,
      spec: specToProto(row, { showImageRef: view.operator }),
      specRevision: BigInt(row.spec_revision),
      placement: placementToProto(row),
      desiredPowerState: POWER_STATES.api(row.desired_power),
      restartPolicy: RESTART_POLICIES.api(row.restart_policy),
      state: stateToProto(row.state),
      stateReason: row.state_reason,
      stateMessage: row.state_message,
      hostId: row.host_id ?? '',
      observedSpecRevision: BigInt(row.observed_spec_revision),
      adbEndpoint: view.operator ? row.adb_endpoint : '',
      createTime: ts(row.create_time),
      updateTime: ts(row.update_time),
      stateChangeTime: ts(row.state_change_time),
      startTime: ts(row.start_time),
      deleteTime: ts(row.delete_time),
    }),
  );
}

export function eventToProto(row: Selectable<DeviceEventTable>): DeviceEvent {
  return create(
    DeviceEventSchema,
    compact({
      eventId: String(row.id),
      deviceId: row.device_id,
      tenantId: row.tenant_id,
      fromState: row.from_state ? stateToProto(row.from_state) : undefined,
      toState: stateToProto(row.to_state),
      reason: row.reason,
      message: row.message,
      hostId: row.host_id ?? '',
      createTime: ts(row.create_time),
    }),
  );
}
