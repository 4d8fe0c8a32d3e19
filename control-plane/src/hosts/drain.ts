// Draining a host: cordon it, then stop its devices in place (STOP) or move them away (MIGRATE).
// While a drain is in progress the host's devices are sent STOPPED (devices/desired-set.ts); the
// moves and the drain's end are the leader's drainer's work (drainer.ts). What is read here is
// progress from the rows, so it survives restarts and replicas, and reading it changes nothing.
import type { Kysely, Transaction } from 'kysely';
import { bumpDesiredRevision } from '../devices/lifecycle.js';
import { countDevicesOnHost, devicesOnHost, lockDevices, updateDevice } from '../store/devices.js';
import { beginDrain, lockHosts } from '../store/hosts.js';
import type { Database, DeviceStateName, DrainMode } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** States in which a device still occupies the host's runtime (a STOP drain waits for them). */
export const ACTIVE_STATES: readonly DeviceStateName[] = [
  'scheduled',
  'creating',
  'booting',
  'running',
  'stopping',
];

/** States from which a MIGRATE drain moves a device: nothing of it runs on the old host any more. */
export const MOVABLE_STATES: readonly DeviceStateName[] = ['stopped', 'error', 'lost'];

/**
 * What the drain still waits for: for STOP, devices not yet stopped; for MIGRATE, devices not yet
 * moved off the host (a moved device's host_id names its new host).
 */
export async function drainRemaining(db: Db, hostId: string, mode: DrainMode): Promise<number> {
  let query = devicesOnHost(db, hostId);
  if (mode === 'stop') query = query.where('state', 'in', ACTIVE_STATES);
  const row = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Locks the host's devices and then the host, in the order every writer keeps (store/hosts.ts), for
 * a transaction that changes both (starting or ending a drain).
 */
export async function lockHostAndDevices(trx: Transaction<Database>, hostId: string): Promise<void> {
  const on = await devicesOnHost(trx, hostId).select('id').execute();
  await lockDevices(
    trx,
    on.map((d) => d.id),
  );
  await lockHosts(trx, [hostId]);
}

/**
 * Sets every device on the host that should run to stopped. Returns the number changed; the caller
 * tells the gateway after its transaction commits.
 */
export async function stopDevicesOn(trx: Transaction<Database>, hostId: string, now: Date): Promise<number> {
  const running = await devicesOnHost(trx, hostId)
    .select('id')
    .where('desired_power', '=', 'running')
    .where('state', '!=', 'deleting')
    .execute();
  return updateDevice(
    trx,
    running.map((r) => r.id),
    { desired_power: 'stopped' },
    now,
  );
}

export interface DrainRequest {
  mode: DrainMode;
  reason: string;
  deadline: Date | undefined;
  now: Date;
}

/**
 * Starts a drain in the caller's transaction: cordons the host, records the drain, and for STOP
 * sets every device to stopped (it stays so after the drain); for MIGRATE records each device and
 * the desired power it has (the moves keep it). Either way the host's devices are held stopped
 * from now on, so the host's desired revision goes up.
 */
export async function startDrain(
  trx: Transaction<Database>,
  hostId: string,
  request: DrainRequest,
): Promise<void> {
  const { now } = request;
  await beginDrain(trx, hostId, {
    mode: request.mode,
    reason: request.reason,
    deadline: request.deadline,
    devicesTotal: await countDevicesOnHost(trx, hostId),
    now,
  });
  if (request.mode === 'stop') await stopDevicesOn(trx, hostId, now);
  else {
    await trx.deleteFrom('drain_device').where('host_id', '=', hostId).execute();
    await trx
      .insertInto('drain_device')
      .columns(['host_id', 'device_id', 'tenant_id', 'desired_power', 'update_time'])
      .expression(
        devicesOnHost(trx, hostId)
          .select((s) => [
            s.val(hostId).as('host_id'),
            'device.id',
            'device.tenant_id',
            'device.desired_power',
            s.val(now).as('update_time'),
          ])
          .where('device.state', '!=', 'deleting'),
      )
      .execute();
  }
  await bumpDesiredRevision(trx, hostId, now);
}

/** Records how one device's move went: where it went, or why it could not move (yet). */
export async function recordMove(
  trx: Transaction<Database>,
  hostId: string,
  deviceId: string,
  outcome: { target: string } | { failure: string },
  now: Date,
): Promise<void> {
  const set =
    'target' in outcome
      ? { target_host_id: outcome.target, failure: '', migrate_time: now, update_time: now }
      : { failure: outcome.failure, update_time: now };
  await trx
    .updateTable('drain_device')
    .set(set)
    .where('host_id', '=', hostId)
    .where('device_id', '=', deviceId)
    .execute();
}

export interface MigrateFailure {
  deviceId: string;
  reason: string;
}

export interface MigrateProgress {
  /** Devices of this drain re-placed on another host. */
  migrated: number;
  /** Devices still on the host whose last re-placement attempt failed, with why. */
  failures: MigrateFailure[];
}

/** What the host's current (or last) MIGRATE drain has moved and failed to move. */
export async function migrateProgress(db: Db, hostId: string): Promise<MigrateProgress> {
  const [moved, failed] = await Promise.all([
    db
      .selectFrom('drain_device')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('host_id', '=', hostId)
      .where('target_host_id', 'is not', null)
      .executeTakeFirstOrThrow(),
    db
      .selectFrom('drain_device')
      .innerJoin('device', 'device.id', 'drain_device.device_id')
      .select(['drain_device.device_id', 'drain_device.failure'])
      .where('drain_device.host_id', '=', hostId)
      .where('drain_device.target_host_id', 'is', null)
      .where('drain_device.failure', '!=', '')
      .where('device.host_id', '=', hostId)
      .where('device.state', 'not in', ['deleting', 'deleted'])
      .orderBy('drain_device.device_id')
      .execute(),
  ]);
  return {
    migrated: Number(moved.n),
    failures: failed.map((f) => ({ deviceId: f.device_id, reason: f.failure })),
  };
}
