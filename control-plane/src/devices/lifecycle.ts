// Desired-state changes to one device, each inside the caller's transaction on a row it read FOR
// UPDATE. They change what the host should run, so each bumps the host's desired revision; the
// caller tells the gateway (desiredChanged) once the transaction has committed. Each returns the
// host to notify, or null when none is involved.
import type { Kysely, Transaction } from 'kysely';
import { FailedPreconditionError, NotFoundError } from '../errors.js';
import { applyPlan } from '../placement/applier.js';
import { type DeviceRow, findDevice, lockDevices, updateDevice } from '../store/devices.js';
import { bumpDesiredRevision as bumpHostRevision } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { transition } from './state-machine.js';

/** A device of one of `tenants`, or NOT_FOUND (another tenant's device is never revealed). */
export async function loadDevice(
  db: Kysely<Database> | Transaction<Database>,
  tenants: readonly string[],
  deviceId: string,
  options: { forUpdate?: boolean } = {},
): Promise<DeviceRow> {
  const row = await findDevice(db, tenants, deviceId, options);
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
  await bumpHostRevision(trx, hostId, now);
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
 * Sets desired power RUNNING, admitted by the tenant's quotas (a running device counts against
 * running devices, vCPU and memory). Refused when it already is, unless the device sits in ERROR,
 * where a start asks the agent to try again (restart_generation is bumped).
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
  if (device.desired_power !== 'running') {
    await applyPlan(
      trx,
      {
        tenantId: device.tenant_id,
        admit: {
          devices: 0,
          runningDevices: 1,
          vcpuMillicores: device.vcpu_millicores,
          memoryMib: device.memory_mib,
        },
      },
      { now },
    );
  }
  await updateDevice(
    trx,
    device.id,
    { desired_power: 'running', restart_generation: device.restart_generation + (retry ? 1 : 0) },
    now,
  );
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
  await updateDevice(trx, device.id, { desired_power: 'stopped' }, now);
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
  await updateDevice(trx, device.id, { restart_generation: device.restart_generation + 1 }, now);
  return bumpDesiredRevision(trx, device.host_id, now);
}

/**
 * Asks for deletion. A placed device goes to DELETING and stays there until its host no longer
 * holds it (devices/observed.ts completes the deletion: the agent reports it gone, its inventory
 * lacks it, or its stream was never told of it), even while the host is unreachable: its data may
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

/** Sets every running device of the tenants to stopped; returns the hosts whose desired set changed. */
export async function stopTenantDevices(
  trx: Transaction<Database>,
  tenants: readonly string[],
  now: Date,
): Promise<string[]> {
  if (tenants.length === 0) return [];
  const running = await trx
    .selectFrom('device')
    .select(['id', 'host_id'])
    .where('tenant_id', 'in', tenants)
    .where('desired_power', '=', 'running')
    .where('state', 'not in', ['deleting', 'deleted'])
    .execute();
  const ids = running.map((d) => d.id);
  const locked = await lockDevices(trx, ids);
  await updateDevice(
    trx,
    locked.map((d) => d.id),
    { desired_power: 'stopped' },
    now,
  );
  const hosts = [...new Set(locked.map((d) => d.host_id).filter((h): h is string => h !== null))].sort();
  for (const hostId of hosts) await bumpDesiredRevision(trx, hostId, now);
  return hosts;
}
