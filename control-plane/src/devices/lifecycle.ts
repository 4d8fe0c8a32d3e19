import type { Kysely, Transaction } from 'kysely';
import { FailedPreconditionError, NotFoundError } from '../errors.js';
import type { Database } from '../store/schema.js';
import type { DeviceRow } from './convert.js';
import { transition } from './state-machine.js';

/**
 * Desired-state changes to one device, each inside the caller's transaction on a row it read FOR
 * UPDATE. They change what the host should run, so each bumps the host's desired_revision; the
 * caller tells the gateway (desiredChanged) once the transaction has committed. Each returns the
 * host to notify, or null when none is involved.
 */

/** A device of one of `tenants`, or NOT_FOUND (another tenant's device is never revealed). */
export async function loadDevice(
  db: Kysely<Database>,
  tenants: readonly string[],
  deviceId: string,
  options: { forUpdate?: boolean } = {},
): Promise<DeviceRow> {
  let query = db
    .selectFrom('device')
    .selectAll()
    .where('id', '=', deviceId)
    .where('tenant_id', 'in', tenants);
  if (options.forUpdate) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw new NotFoundError('device', deviceId);
  return row;
}

/** Tells the host's agent its desired device set changed; nothing for a device on no host. */
export async function bumpDesiredRevision(
  trx: Transaction<Database>,
  hostId: string | null,
  now: Date,
): Promise<string | null> {
  if (!hostId) return null;
  await trx
    .updateTable('host')
    .set((eb) => ({ desired_revision: eb('desired_revision', '+', 1), update_time: now }))
    .where('id', '=', hostId)
    .execute();
  return hostId;
}

function refuseWhenDeleted(device: DeviceRow, action: string): void {
  if (device.state === 'deleting' || device.state === 'deleted') {
    throw new FailedPreconditionError(
      `device ${JSON.stringify(device.id)} is ${device.state}: cannot ${action} it`,
    );
  }
}

/**
 * Sets desired power RUNNING. Refused when it already is, unless the device sits in ERROR, where a
 * start asks the agent to try again (restart_generation is bumped).
 */
export async function startDevice(
  trx: Transaction<Database>,
  device: DeviceRow,
  now: Date,
): Promise<string | null> {
  refuseWhenDeleted(device, 'start');
  const retry = device.state === 'error';
  if (device.desired_power === 'running' && !retry) {
    throw new FailedPreconditionError(
      `device ${JSON.stringify(device.id)} is ${device.state} and already set to run`,
    );
  }
  await trx
    .updateTable('device')
    .set((eb) => ({
      desired_power: 'running',
      restart_generation: retry ? eb('restart_generation', '+', 1) : eb.ref('restart_generation'),
      update_time: now,
    }))
    .where('id', '=', device.id)
    .execute();
  return bumpDesiredRevision(trx, device.host_id, now);
}

/** Sets desired power STOPPED; refused when it already is. */
export async function stopDevice(
  trx: Transaction<Database>,
  device: DeviceRow,
  now: Date,
): Promise<string | null> {
  refuseWhenDeleted(device, 'stop');
  if (device.desired_power === 'stopped') {
    throw new FailedPreconditionError(
      `device ${JSON.stringify(device.id)} is ${device.state} and already set to stop`,
    );
  }
  await trx
    .updateTable('device')
    .set({ desired_power: 'stopped', update_time: now })
    .where('id', '=', device.id)
    .execute();
  return bumpDesiredRevision(trx, device.host_id, now);
}

/** Restarts the container: the agent sees a new restart_generation in its desired set. */
export async function hardReboot(
  trx: Transaction<Database>,
  device: DeviceRow,
  now: Date,
): Promise<string | null> {
  if (device.state !== 'running') {
    throw new FailedPreconditionError(
      `device ${JSON.stringify(device.id)} is ${device.state}: only a running device can be rebooted`,
    );
  }
  await trx
    .updateTable('device')
    .set((eb) => ({ restart_generation: eb('restart_generation', '+', 1), update_time: now }))
    .where('id', '=', device.id)
    .execute();
  return bumpDesiredRevision(trx, device.host_id, now);
}

/**
 * Asks for deletion. A placed device goes to DELETING and stays there until its agent reports the
 * container and volume gone (the gateway then releases its resources), even while the host is unreachable: its data may
 * still be on the host, and a returning agent must not find a device the store forgot. A device
 * never placed has nothing to remove and goes straight to DELETED.
 */
export async function requestDeletion(
  trx: Transaction<Database>,
  device: DeviceRow,
  now: Date,
): Promise<string | null> {
  await transition(trx, {
    deviceId: device.id,
    tenantId: device.tenant_id,
    from: device.state,
    to: 'deleting',
    reason: 'USER_DELETE',
    now,
  });
  if (device.host_id === null) {
    await transition(trx, {
      deviceId: device.id,
      tenantId: device.tenant_id,
      from: 'deleting',
      to: 'deleted',
      reason: 'NEVER_PLACED',
      now,
    });
    return null;
  }
  return bumpDesiredRevision(trx, device.host_id, now);
}
