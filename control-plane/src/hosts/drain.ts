// Draining a host: cordon it, then stop its devices in place (STOP) or move them away (MIGRATE).
// The work itself is desired state (devices set to stopped, or re-placed elsewhere) that the agent
// converges to; progress is read back from the device rows, so it survives restarts and replicas.
import type { Kysely, Transaction } from 'kysely';
import { bumpDesiredRevision } from '../devices/lifecycle.js';
import type { Database, DeviceStateName, DrainMode } from '../store/schema.js';
import { findHost, type HostRow } from './host-view.js';

type Db = Kysely<Database> | Transaction<Database>;

/** States in which a device still occupies the host's runtime (a STOP drain waits for them). */
export const ACTIVE_STATES: readonly DeviceStateName[] = [
  'scheduled',
  'creating',
  'booting',
  'running',
  'stopping',
];

/** Devices placed on the host that are not deleted. */
function devicesOn(db: Db, hostId: string) {
  return db
    .selectFrom('device')
    .where('host_id', '=', hostId)
    .where('delete_time', 'is', null)
    .where('state', 'not in', ['deleted']);
}

export async function countDevicesOn(db: Db, hostId: string): Promise<number> {
  const row = await devicesOn(db, hostId)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * What the drain still waits for: for STOP, devices not yet stopped; for MIGRATE, devices not yet
 * moved off the host (a moved device's host_id names its new host).
 */
export async function drainRemaining(db: Db, hostId: string, mode: DrainMode): Promise<number> {
  let query = devicesOn(db, hostId);
  if (mode === 'stop') query = query.where('state', 'in', ACTIVE_STATES);
  const row = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Asks every device on the host that should run to stop, and bumps the host's desired revision
 * when anything changed. Returns the number of devices changed; the caller tells the gateway
 * after its transaction commits.
 */
export async function stopDevicesOn(trx: Transaction<Database>, hostId: string, now: Date): Promise<number> {
  const result = await trx
    .updateTable('device')
    .set({ desired_power: 'stopped', update_time: now })
    .where('host_id', '=', hostId)
    .where('delete_time', 'is', null)
    .where('desired_power', '=', 'running')
    .where('state', 'not in', ['deleting', 'deleted'])
    .executeTakeFirst();
  const changed = Number(result.numUpdatedRows);
  if (changed > 0) await bumpDesiredRevision(trx, hostId, now);
  return changed;
}

export interface DrainStart {
  mode: DrainMode;
  reason: string;
  deadline: Date | undefined;
  now: Date;
}

/** Cordons the host and records a new drain in progress (the caller moves or stops the devices). */
export async function beginDrain(
  trx: Transaction<Database>,
  hostId: string,
  start: DrainStart,
): Promise<void> {
  const total = await countDevicesOn(trx, hostId);
  await trx
    .updateTable('host')
    .set({
      cordoned: true,
      drain_mode: start.mode,
      drain_last_mode: start.mode,
      drain_state: 'in_progress',
      drain_reason: start.reason,
      drain_devices_total: total,
      drain_start_time: start.now,
      drain_deadline: start.deadline ?? null,
      drain_end_time: null,
      update_time: start.now,
    })
    .where('id', '=', hostId)
    .execute();
}

export interface DrainProgress {
  host: HostRow;
  /** Devices the drain still waits for (see drainRemaining). */
  remaining: number;
  /** Devices whose desired state changed while settling the drain (deadline fallback). */
  desiredChanged: boolean;
}

/**
 * Reads a drain's progress and settles it: COMPLETED once nothing remains, FAILED once the deadline
 * passed with devices remaining (whose desired state then becomes stopped, whatever the mode).
 * Safe to call from any replica at any time; the state change is conditional on still being in
 * progress.
 */
export async function settleDrain(
  db: Kysely<Database>,
  hostId: string,
  now: Date,
): Promise<DrainProgress | undefined> {
  const host = await findHost(db, hostId);
  if (!host) return undefined;
  const mode = host.drain_last_mode;
  if (host.drain_state !== 'in_progress' || !mode) {
    const remaining = mode ? await drainRemaining(db, hostId, mode) : 0;
    return { host, remaining, desiredChanged: false };
  }
  const remaining = await drainRemaining(db, hostId, mode);
  const expired = host.drain_deadline !== null && host.drain_deadline.getTime() <= now.getTime();
  if (remaining > 0 && !expired) return { host, remaining, desiredChanged: false };
  const desiredChanged = await db.transaction().execute(async (trx) => {
    const ended = await trx
      .updateTable('host')
      .set({
        drain_mode: null,
        drain_state: remaining === 0 ? 'completed' : 'failed',
        drain_end_time: now,
        update_time: now,
      })
      .where('id', '=', hostId)
      .where('drain_state', '=', 'in_progress')
      .executeTakeFirst();
    if (ended.numUpdatedRows !== 1n || remaining === 0) return false;
    return (await stopDevicesOn(trx, hostId, now)) > 0;
  });
  const settled = await findHost(db, hostId);
  if (!settled) return undefined;
  return { host: settled, remaining: await drainRemaining(db, hostId, mode), desiredChanged };
}

/**
 * UncordonHost: the host takes devices again and a drain in progress is cancelled. Returns the mode
 * of the drain it cancelled, null when none was in progress.
 */
export async function uncordon(
  trx: Transaction<Database>,
  hostId: string,
  now: Date,
): Promise<DrainMode | null> {
  await trx.updateTable('host').set({ cordoned: false, update_time: now }).where('id', '=', hostId).execute();
  const cancelled = await trx
    .updateTable('host')
    .set({ drain_mode: null, drain_state: 'cancelled', drain_end_time: now })
    .where('id', '=', hostId)
    .where('drain_state', '=', 'in_progress')
    .returning('drain_last_mode')
    .executeTakeFirst();
  return cancelled?.drain_last_mode ?? null;
}
