// The writes and locks of the `device` table, and the reads that several domains share. A device's
// host (host_id) is written by the plan applier alone (placement/applier.ts, through insertDevices,
// a move's state change and unassignHost); its state only through the state machine
// (devices/state-machine.ts, through setState). Lock order: store/hosts.ts.
import {
  type Insertable,
  type Kysely,
  type Selectable,
  sql,
  type Transaction,
  type Updateable,
} from 'kysely';
import type { Database, DeviceStateName, DeviceTable } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

export type DeviceRow = Selectable<DeviceTable>;

/** A device of one of `tenants` (another tenant's device is never revealed), optionally locked. */
export function findDevice(
  db: Db,
  tenants: readonly string[],
  deviceId: string,
  options: { forUpdate?: boolean } = {},
): Promise<DeviceRow | undefined> {
  let query = db
    .selectFrom('device')
    .selectAll()
    .where('id', '=', deviceId)
    .where('tenant_id', 'in', tenants);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

/** Locks devices in id order, whatever their tenant (internal callers: drains, agent reports). */
export function lockDevices(trx: Transaction<Database>, deviceIds: readonly string[]): Promise<DeviceRow[]> {
  if (deviceIds.length === 0) return Promise.resolve([]);
  return trx
    .selectFrom('device')
    .selectAll()
    .where('id', 'in', [...new Set(deviceIds)])
    .orderBy('id')
    .forUpdate()
    .execute();
}

/** Inserts placed devices (the plan applier). */
export async function insertDevices(
  trx: Transaction<Database>,
  rows: readonly Insertable<DeviceTable>[],
): Promise<DeviceRow[]> {
  if (rows.length === 0) return [];
  return trx.insertInto('device').values(rows).returningAll().execute();
}

/** The columns a move to another host sets with its state change (the plan applier only). */
export type HostAssignment = Pick<
  Updateable<DeviceTable>,
  'host_id' | 'adb_endpoint' | 'observed_spec_revision'
>;

/** Clears the devices' host (their host is being deleted; the plan applier). */
export async function unassignHost(trx: Transaction<Database>, deviceIds: readonly string[], now: Date) {
  if (deviceIds.length === 0) return;
  await trx
    .updateTable('device')
    .set({ host_id: null, update_time: now })
    .where('id', 'in', deviceIds)
    .execute();
}

/** The columns a state change may set beside the state. */
export type StateSet = Partial<
  Pick<Updateable<DeviceTable>, 'adb_endpoint' | 'observed_spec_revision' | 'delete_time'>
> &
  HostAssignment;

/**
 * The state machine's write: moves the device from `from` to `to` if it is still in `from`.
 * Returns its host, or undefined when it was not in `from` (changed concurrently).
 */
export async function setState(
  trx: Transaction<Database>,
  change: {
    deviceId: string;
    from: DeviceStateName;
    to: DeviceStateName;
    reason: string;
    message: string;
    set?: StateSet | undefined;
    now: Date;
  },
): Promise<{ host_id: string | null } | undefined> {
  const { now, to } = change;
  return trx
    .updateTable('device')
    .set({
      state: to,
      state_reason: change.reason,
      state_message: change.message,
      update_time: now,
      state_change_time: now,
      ...(to === 'running' ? { start_time: now } : {}),
      // delete_time is when deletion was asked for; DELETED keeps the DELETING time.
      ...(to === 'deleting' ? { delete_time: now } : {}),
      ...(to === 'deleted' ? { delete_time: sql<Date>`coalesce(delete_time, ${now})` } : {}),
      ...change.set,
    })
    .where('id', '=', change.deviceId)
    .where('state', '=', change.from)
    .returning('host_id')
    .executeTakeFirst();
}

export async function currentState(db: Db, deviceId: string): Promise<DeviceStateName | undefined> {
  const row = await db.selectFrom('device').select('state').where('id', '=', deviceId).executeTakeFirst();
  return row?.state;
}

export async function hostOfDevice(db: Db, deviceId: string): Promise<string | null> {
  const row = await db.selectFrom('device').select('host_id').where('id', '=', deviceId).executeTakeFirst();
  return row?.host_id ?? null;
}

/** The user-owned fields and the desired power: what API updates write. */
export type DeviceEdit = Partial<
  Pick<
    Updateable<DeviceTable>,
    'display_name' | 'labels' | 'restart_policy' | 'desired_power' | 'restart_generation'
  >
>;

export async function updateDevice(
  trx: Transaction<Database>,
  deviceIds: string | readonly string[],
  edit: DeviceEdit,
  now: Date,
): Promise<number> {
  const ids = typeof deviceIds === 'string' ? [deviceIds] : deviceIds;
  if (ids.length === 0) return 0;
  const result = await trx
    .updateTable('device')
    .set({ ...edit, update_time: now })
    .where('id', 'in', ids)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Records what the agent runs without a state change (endpoint, spec revision). */
export async function recordObserved(
  trx: Transaction<Database>,
  deviceId: string,
  set: Pick<Updateable<DeviceTable>, 'adb_endpoint' | 'observed_spec_revision' | 'state_message'>,
  now: Date,
): Promise<void> {
  await trx
    .updateTable('device')
    .set({ ...set, update_time: now })
    .where('id', '=', deviceId)
    .execute();
}

/** Devices placed on the host that are not deleted, optionally narrowed by the caller. */
export function devicesOnHost(db: Db, hostId: string) {
  return db
    .selectFrom('device')
    .where('host_id', '=', hostId)
    .where('delete_time', 'is', null)
    .where('state', '!=', 'deleted');
}

export async function countDevicesOnHost(db: Db, hostId: string): Promise<number> {
  const row = await devicesOnHost(db, hostId)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** How many devices are in each state, deleted ones left out (the metrics' fleet gauge). */
export async function deviceCountsByState(db: Db): Promise<Partial<Record<DeviceStateName, number>>> {
  const rows = await db
    .selectFrom('device')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('state', '!=', 'deleted')
    .groupBy('state')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}
