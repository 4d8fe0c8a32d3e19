import type { Transaction } from 'kysely';
import { FailedPreconditionError } from '../errors.js';
import { currentState, hostOfDevice, type StateSet, setState } from '../store/devices.js';
import type { Database, DeviceStateName } from '../store/schema.js';
import { enqueueDeviceEvents } from '../webhooks/device-events.js';

export { stateFromProto, stateToProto } from './state-names.js';

/**
 * The device state machine (the proto's DeviceState comment is the spec). Any non-terminal state
 * may go to DELETING; any placed state may go to LOST; LOST may go to whatever the agent reports
 * once the host is back, or to SCHEDULED when the device is re-placed.
 */
const NEXT: Record<DeviceStateName, readonly DeviceStateName[]> = {
  pending: ['scheduled', 'error'],
  scheduled: ['creating', 'booting', 'stopped', 'error'],
  creating: ['booting', 'running', 'stopped', 'error'],
  booting: ['running', 'stopping', 'stopped', 'error'],
  running: ['booting', 'stopping', 'stopped', 'error'],
  stopping: ['stopped', 'error'],
  stopped: ['booting', 'running', 'scheduled', 'error'],
  error: ['booting', 'running', 'stopping', 'stopped', 'scheduled'],
  lost: ['scheduled', 'creating', 'booting', 'running', 'stopping', 'stopped', 'error'],
  deleting: ['deleted'],
  deleted: [],
};

/** States of a device placed on a host: those a lost host takes to LOST. */
export const PLACED_STATES: readonly DeviceStateName[] = [
  'scheduled',
  'creating',
  'booting',
  'running',
  'stopping',
  'stopped',
  'error',
];
const PLACED: ReadonlySet<DeviceStateName> = new Set(PLACED_STATES);

export function canTransition(from: DeviceStateName, to: DeviceStateName): boolean {
  if (from === to) return false;
  if (to === 'deleting') return from !== 'deleted' && from !== 'deleting';
  if (to === 'lost') return PLACED.has(from);
  return NEXT[from].includes(to);
}

export class IllegalTransitionError extends FailedPreconditionError {
  constructor(
    readonly deviceId: string,
    readonly from: DeviceStateName,
    readonly to: DeviceStateName,
  ) {
    super(`device ${JSON.stringify(deviceId)} is ${from}: it cannot become ${to}`);
  }
}

export function assertTransition(deviceId: string, from: DeviceStateName, to: DeviceStateName): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(deviceId, from, to);
}

export interface TransitionInput {
  deviceId: string;
  tenantId: string;
  from: DeviceStateName | null;
  to: DeviceStateName;
  reason?: string;
  message?: string;
  /** Other device columns to set in the same update (host_id: the plan applier only). */
  set?: StateSet;
  now: Date;
}

/**
 * Moves a device to `to` inside the caller's transaction and records the event (with the host the
 * device is on). The update is conditional on the state the caller read (`from`), so a concurrent
 * change makes it fail with FAILED_PRECONDITION instead of silently overwriting. `from: null`
 * records a creation of a row the caller inserted.
 */
export async function transition(trx: Transaction<Database>, input: TransitionInput): Promise<void> {
  let hostId: string | null = null;
  if (input.from !== null) {
    assertTransition(input.deviceId, input.from, input.to);
    const updated = await setState(trx, {
      deviceId: input.deviceId,
      from: input.from,
      to: input.to,
      reason: input.reason ?? '',
      message: input.message ?? '',
      set: input.set,
      now: input.now,
    });
    if (!updated) {
      const current = await currentState(trx, input.deviceId);
      throw new FailedPreconditionError(
        `device ${JSON.stringify(input.deviceId)} changed concurrently: it is ${current ?? 'gone'}, not ${input.from}`,
      );
    }
    hostId = updated.host_id;
  } else {
    hostId = await hostOfDevice(trx, input.deviceId);
  }
  await recordEvents(
    trx,
    [
      {
        deviceId: input.deviceId,
        tenantId: input.tenantId,
        from: input.from,
        to: input.to,
        reason: input.reason ?? '',
        message: input.message ?? '',
        hostId,
      },
    ],
    input.now,
  );
}

export interface DeviceEventInput {
  deviceId: string;
  tenantId: string;
  from: DeviceStateName | null;
  to: DeviceStateName;
  reason: string;
  message: string;
  hostId: string | null;
}

/**
 * Appends events in one statement, for callers that changed the rows themselves (the plan applier
 * inserts a whole batch of devices already SCHEDULED).
 */
export async function recordEvents(
  trx: Transaction<Database>,
  events: readonly DeviceEventInput[],
  now: Date,
): Promise<void> {
  if (events.length === 0) return;
  const rows = await trx
    .insertInto('device_event')
    .values(
      events.map((e) => ({
        device_id: e.deviceId,
        tenant_id: e.tenantId,
        from_state: e.from,
        to_state: e.to,
        reason: e.reason,
        message: e.message,
        host_id: e.hostId,
        create_time: now,
      })),
    )
    .returningAll()
    .execute();
  // The webhook events of these changes, in the same transaction (the outbox).
  await enqueueDeviceEvents(trx, rows, now);
}
