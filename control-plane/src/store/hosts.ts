// Every query on the `host` table lives here, so its lock order and its one ledger writer can be
// read in one place.
//
// Lock order, for every transaction that locks more than one kind of row: device rows (id order),
// then quota rows (tenant id order, tenants/admission.ts), then host rows (id order). A Hello, a
// loss, a plan and a drain all follow it.
//
// The ledger (`allocated_*`) is written by adjustAllocations alone, and adjustAllocations is called
// by the plan applier alone (placement/applier.ts): the allocation of a host always equals the sum
// of the devices placed on it that are not DELETED, at every commit.
//
// Every write to a column in SCHEDULING_COLUMNS, whoever makes it, bumps the row's change_seq and
// tells every replica's fleet view through a NOTIFY (a trigger: migration
// 2026-12-02T0100-host-change-feed), so nothing here has to remember to.
import { type Insertable, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { Resources } from '../scheduler/index.js';
import type { Database, DrainMode, DrainStateName, HostConnection, HostTable } from './schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** The host columns the scheduler and the plan applier read. */
export const SCHEDULING_COLUMNS = [
  'id',
  'name',
  'arch',
  'labels',
  'connection',
  'gateway_replica',
  'cordoned',
  'drain_state',
  'capacity_vcpu_millicores',
  'capacity_memory_mib',
  'capacity_storage_gib',
  'capacity_devices',
  'overcommit_cpu',
  'overcommit_memory',
  'allocated_vcpu_millicores',
  'allocated_memory_mib',
  'allocated_storage_gib',
  'allocated_devices',
  'change_seq',
] as const;

export type SchedulingRow = Pick<Selectable<HostTable>, (typeof SCHEDULING_COLUMNS)[number]>;

export type HostStateName = 'revoked' | 'pending' | 'unreachable' | 'draining' | 'cordoned' | 'ready';

/**
 * A host's summary state, in the proto's precedence: REVOKED (no live credential), PENDING (never
 * connected), UNREACHABLE (no agent stream open now, or silent past the heartbeat TTL), DRAINING,
 * CORDONED, READY. In SQL so the ListHosts state filter pages correctly.
 */
export const hostStateSql = sql<HostStateName>`case
  when not exists (
    select 1 from host_credential hc where hc.host_id = host.id and hc.revoke_time is null
  ) then 'revoked'
  when host.connection = 'new' then 'pending'
  when host.connection = 'unreachable' or host.gateway_replica is null then 'unreachable'
  when host.drain_state = 'in_progress' then 'draining'
  when host.cordoned then 'cordoned'
  else 'ready' end`;

export type HostRecord = Selectable<HostTable> & { state: HostStateName };

/** Hosts with their summary state; callers add filters, order and limit. */
export function selectHosts(db: Db) {
  return db.selectFrom('host').selectAll('host').select(hostStateSql.as('state'));
}

export function findHost(db: Db, hostId: string): Promise<HostRecord | undefined> {
  return selectHosts(db).where('host.id', '=', hostId).executeTakeFirst();
}

export async function hostIdByName(db: Db, name: string): Promise<string | undefined> {
  const row = await db.selectFrom('host').select('id').where('name', '=', name).executeTakeFirst();
  return row?.id;
}

export async function insertHost(db: Db, row: Insertable<HostTable>): Promise<void> {
  await db.insertInto('host').values(row).execute();
}

export async function deleteHost(trx: Transaction<Database>, hostId: string): Promise<void> {
  await trx.deleteFrom('host').where('id', '=', hostId).execute();
}

/** The fields an operator edits (UpdateHost). */
export type HostEdit = Partial<
  Pick<Insertable<HostTable>, 'name' | 'labels' | 'overcommit_cpu' | 'overcommit_memory' | 'cordoned'>
>;

export async function updateHost(db: Db, hostId: string, edit: HostEdit, now: Date): Promise<void> {
  await db
    .updateTable('host')
    .set({ ...edit, update_time: now })
    .where('id', '=', hostId)
    .execute();
}

/** The scheduler's read of the fleet (or of some hosts). */
export function selectSchedulingRows(db: Db, hostIds?: readonly string[]): Promise<SchedulingRow[]> {
  let query = db.selectFrom('host').select(SCHEDULING_COLUMNS);
  if (hostIds) {
    if (hostIds.length === 0) return Promise.resolve([]);
    query = query.where('id', 'in', hostIds);
  }
  return query.execute();
}

/** Locks the hosts' rows in id order (the one order every locker uses) and returns them. */
export function lockHosts(trx: Transaction<Database>, hostIds: readonly string[]): Promise<SchedulingRow[]> {
  if (hostIds.length === 0) return Promise.resolve([]);
  return trx
    .selectFrom('host')
    .select(SCHEDULING_COLUMNS)
    .where('id', 'in', [...new Set(hostIds)].sort())
    .orderBy('id')
    .forUpdate()
    .execute();
}

/** One host's part of a ledger write. */
export interface AllocationChange {
  readonly hostId: string;
  /** Added to the allocation; negative amounts release. */
  readonly delta: Resources;
  /** Whether the host's desired device set changed (its revision goes up by one). */
  readonly bumpRevision: boolean;
}

/**
 * THE ledger write: adds each change's delta to its host's allocation (and bumps the desired
 * revision where asked), in one statement, and returns the rows as they now are. Only the plan
 * applier calls it, on hosts it has locked.
 */
export async function adjustAllocations(
  trx: Transaction<Database>,
  changes: readonly AllocationChange[],
  now: Date,
): Promise<SchedulingRow[]> {
  if (changes.length === 0) return [];
  const values = changes.map(
    ({ hostId, delta, bumpRevision }) =>
      sql`(${hostId}::text, ${delta.vcpuMillicores}::bigint, ${delta.memoryMib}::bigint,
        ${delta.storageGib}::bigint, ${delta.devices}::integer, ${bumpRevision ? 1 : 0}::bigint)`,
  );
  const columns = sql.join(SCHEDULING_COLUMNS.map((c) => sql.ref(`host.${c}`)));
  const result = await sql<SchedulingRow>`
    update host set
      allocated_vcpu_millicores = host.allocated_vcpu_millicores + v.cpu,
      allocated_memory_mib = host.allocated_memory_mib + v.memory,
      allocated_storage_gib = host.allocated_storage_gib + v.storage,
      allocated_devices = host.allocated_devices + v.devices,
      desired_revision = host.desired_revision + v.bump,
      update_time = ${now.toISOString()}::timestamptz
    from (values ${sql.join(values)}) as v(id, cpu, memory, storage, devices, bump)
    where host.id = v.id
    returning ${columns}`.execute(trx);
  return result.rows;
}

/** The host's desired device set changed: its revision goes up by one. */
export async function bumpDesiredRevision(
  trx: Transaction<Database>,
  hostId: string,
  now: Date,
): Promise<void> {
  await trx
    .updateTable('host')
    .set((eb) => ({ desired_revision: eb('desired_revision', '+', 1), update_time: now }))
    .where('id', '=', hostId)
    .execute();
}

/** What the desired set is read with: the host's revision and whether a drain holds its devices. */
export function desiredHead(db: Db, hostId: string) {
  return db
    .selectFrom('host')
    .select(['desired_revision', 'drain_state'])
    .where('id', '=', hostId)
    .executeTakeFirst();
}

// ---- drains ----

export interface DrainStart {
  mode: DrainMode;
  reason: string;
  deadline: Date | undefined;
  devicesTotal: number;
  now: Date;
}

/** Cordons the host and records a new drain in progress. */
export async function beginDrain(
  trx: Transaction<Database>,
  hostId: string,
  start: DrainStart,
): Promise<void> {
  await trx
    .updateTable('host')
    .set({
      cordoned: true,
      drain_mode: start.mode,
      drain_last_mode: start.mode,
      drain_state: 'in_progress',
      drain_reason: start.reason,
      drain_devices_total: start.devicesTotal,
      drain_start_time: start.now,
      drain_deadline: start.deadline ?? null,
      drain_end_time: null,
      update_time: start.now,
    })
    .where('id', '=', hostId)
    .execute();
}

/**
 * Ends the host's drain in progress as `state`; false when none was in progress (another pass or
 * replica ended it first), so an ending happens exactly once.
 */
export async function endDrain(
  db: Db,
  hostId: string,
  state: Exclude<DrainStateName, 'in_progress'>,
  now: Date,
): Promise<boolean> {
  const ended = await db
    .updateTable('host')
    .set({ drain_mode: null, drain_state: state, drain_end_time: now, update_time: now })
    .where('id', '=', hostId)
    .where('drain_state', '=', 'in_progress')
    .executeTakeFirst();
  return ended.numUpdatedRows === 1n;
}

/** Hosts with a drain in progress (the drainer's work list). */
export function drainingHosts(db: Db) {
  return db
    .selectFrom('host')
    .select(['id', 'name', 'drain_last_mode', 'drain_deadline'])
    .where('drain_state', '=', 'in_progress')
    .orderBy('id')
    .execute();
}

/** Locks the host row and reads its drain (a move re-checks the drain under this lock). */
export function lockDrain(trx: Transaction<Database>, hostId: string) {
  return trx
    .selectFrom('host')
    .select(['name', 'drain_state', 'drain_mode'])
    .where('id', '=', hostId)
    .forUpdate()
    .executeTakeFirst();
}

// ---- the agent's link ----

export interface HelloFacts {
  agentVersion: string;
  protocolVersion: number;
  /** Public URL of the agent's stream endpoint; '' when it serves none. */
  streamEndpoint: string;
  runtimeKind: string;
  hostname: string;
  kernelVersion: string;
  agentInstanceId: string;
  agentLabels: Readonly<Record<string, string>>;
  arch: string;
  /** Physical capacity the agent reports; absent keeps the enrolled one. */
  capacity: Resources | undefined;
}

/**
 * Marks the host ready and its stream held by `replicaId`, records the Hello's facts, and returns
 * the connection state it had and the replica that held its stream before (undefined: no such host).
 */
export async function recordHello(
  trx: Transaction<Database>,
  hostId: string,
  facts: HelloFacts,
  replicaId: string,
  now: Date,
): Promise<{ connection: HostConnection; heldBy: string | null } | undefined> {
  const before = await trx
    .selectFrom('host')
    .select(['connection', 'gateway_replica'])
    .where('id', '=', hostId)
    .forUpdate()
    .executeTakeFirst();
  if (!before) return undefined;
  const capacity = facts.capacity;
  await trx
    .updateTable('host')
    .set({
      connection: 'ready',
      last_heartbeat_time: now,
      unreachable_since: null,
      agent_version: facts.agentVersion,
      protocol_version: facts.protocolVersion,
      stream_endpoint: facts.streamEndpoint,
      runtime_kind: facts.runtimeKind,
      hostname: facts.hostname,
      kernel_version: facts.kernelVersion,
      agent_instance_id: facts.agentInstanceId,
      gateway_replica: replicaId,
      agent_labels: JSON.stringify(facts.agentLabels),
      ...(facts.arch ? { arch: facts.arch } : {}),
      ...(capacity
        ? {
            capacity_vcpu_millicores: capacity.vcpuMillicores,
            capacity_memory_mib: capacity.memoryMib,
            capacity_storage_gib: capacity.storageGib,
            capacity_devices: capacity.devices,
          }
        : {}),
      update_time: now,
    })
    .where('id', '=', hostId)
    .execute();
  return { connection: before.connection, heldBy: before.gateway_replica };
}

export interface HeartbeatRow {
  hostId: string;
  time: Date;
  /** HostLoad as protobuf JSON with numbers. */
  load: Record<string, number>;
}

/**
 * Writes a batch of heartbeats in one statement. A heartbeat proves the host reachable, so it also
 * heals a host marked unreachable while its stream stayed up (e.g. a stalled flush on a busy replica).
 */
export async function writeHeartbeats(db: Db, rows: readonly HeartbeatRow[]): Promise<void> {
  if (rows.length === 0) return;
  const values = [...rows]
    .sort((a, b) => (a.hostId < b.hostId ? -1 : 1))
    .map(
      (r) => sql`(${r.hostId}::text, ${r.time.toISOString()}::timestamptz, ${JSON.stringify(r.load)}::jsonb)`,
    );
  await sql`
    update host set
      last_heartbeat_time = greatest(host.last_heartbeat_time, v.t),
      load = v.load,
      connection = 'ready',
      unreachable_since = null,
      update_time = v.t
    from (values ${sql.join(values)}) as v(id, t, load)
    where host.id = v.id`.execute(db);
}

/** Hosts silent since before `cutoff` become unreachable; returns them with their last heartbeat. */
export function markUnreachable(db: Db, cutoff: Date, now: Date) {
  return db
    .updateTable('host')
    .set({ connection: 'unreachable', unreachable_since: now, update_time: now })
    .where('connection', '=', 'ready')
    .where((eb) => eb.or([eb('last_heartbeat_time', '<', cutoff), eb('last_heartbeat_time', 'is', null)]))
    .returning(['id', 'last_heartbeat_time'])
    .execute();
}

/** Unreachable since at or before `cutoff`, with devices in `states` still on them. */
export function hostsUnreachableSince(db: Db, cutoff: Date, states: readonly string[]) {
  return db
    .selectFrom('host')
    .select('id')
    .where('connection', '=', 'unreachable')
    .where('unreachable_since', '<=', cutoff)
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('device')
          .select('device.id')
          .whereRef('device.host_id', '=', 'host.id')
          .where('device.state', 'in', states as never),
      ),
    )
    .execute();
}

/** Locks the host if it is still unreachable since at or before `cutoff` (a loss re-checks). */
export function lockIfUnreachableSince(trx: Transaction<Database>, hostId: string, cutoff: Date) {
  return trx
    .selectFrom('host')
    .select(['id', 'unreachable_since'])
    .where('id', '=', hostId)
    .where('connection', '=', 'unreachable')
    .where('unreachable_since', '<=', cutoff)
    .forUpdate()
    .executeTakeFirst();
}

/** The replica holding the host's stream, if the host is reachable and one does. */
export async function streamHolder(db: Db, hostId: string): Promise<string | null> {
  const host = await db
    .selectFrom('host')
    .select(['connection', 'gateway_replica'])
    .where('id', '=', hostId)
    .executeTakeFirst();
  return host?.connection === 'ready' ? host.gateway_replica : null;
}

/**
 * The stream of the host (or of every host) held by `replicaId` ended; a row a newer stream on
 * another replica took over names that replica and is left alone.
 */
export async function releaseStreams(db: Db, replicaId: string, hostId?: string): Promise<void> {
  await db
    .updateTable('host')
    .set({ gateway_replica: null })
    .where('gateway_replica', '=', replicaId)
    .$if(hostId !== undefined, (q) => q.where('id', '=', hostId ?? ''))
    .execute();
}

/** Replicas named as holding some host's stream. */
export async function streamHolders(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('host')
    .select('gateway_replica')
    .distinct()
    .where('gateway_replica', 'is not', null)
    .execute();
  return rows.map((r) => r.gateway_replica ?? '').filter((id) => id !== '');
}

/** How many hosts are in each connection state (the metrics' fleet gauge). */
export async function hostCountsByConnection(db: Db): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('host')
    .select(['connection', (eb) => eb.fn.countAll<number>().as('n')])
    .groupBy('connection')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.connection, Number(r.n)]));
}
