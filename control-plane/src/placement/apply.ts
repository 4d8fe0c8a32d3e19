import type { Selectable, Transaction } from 'kysely';
import { recordEvents } from '../devices/state-machine.js';
import { ResourceExhaustedError } from '../errors.js';
import {
  buildSnapshot,
  type HostInput,
  type ImageRequirements,
  type PlacementRequest,
  place,
  type ResourceAsk,
  type Snapshot,
  type Strategy,
} from '../scheduler/index.js';
import type { Database, DeviceTable } from '../store/schema.js';
import { type FleetCache, type FleetView, fleetView } from './fleet-cache.js';
import { HOST_COLUMNS, type HostRow, loadHostInputs, toHostInput, withAllocation } from './host-input.js';

/** One validated device to create: its row values and what the scheduler needs to place it. */
export interface DeviceDraft {
  readonly id: string;
  readonly displayName: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly imageId: string;
  /** The resolved DeviceSpec, as protobuf JSON. */
  readonly spec: Record<string, unknown>;
  readonly resources: ResourceAsk;
  /** The Placement as given, as protobuf JSON. */
  readonly placement: Record<string, unknown>;
  readonly desiredPower: 'running' | 'stopped';
  readonly restartPolicy: 'always' | 'on_failure' | 'never';
  readonly image: ImageRequirements;
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly strategy: Strategy;
  readonly spreadTenant: boolean;
  /** Only this host (an operator's pin). */
  readonly pinHostId?: string | undefined;
}

export interface PlacementBatch {
  readonly tenantId: string;
  /** 1..100 devices; all are placed or none. */
  readonly devices: readonly DeviceDraft[];
  /** Varies where spread scans start, so concurrent batches sample different hosts. */
  readonly seed?: string;
  readonly now: Date;
  /**
   * The replica's cached fleet (refreshed by the caller before opening the transaction): the
   * first round plans on it instead of reading every host, each plan reserves its hosts there
   * while it commits, and committed rows are written back. Absent: every round reads the fleet.
   */
  readonly cache?: FleetCache;
}

export interface AppliedPlacement {
  /** The inserted rows, in batch order, state SCHEDULED. */
  readonly devices: Selectable<DeviceTable>[];
  /** Hosts whose desired set changed: tell the gateway once the transaction has committed. */
  readonly hostIds: string[];
  /** Placement rounds it took (1 unless concurrent batches took the capacity first). */
  readonly attempts: number;
}

/** Rounds of place -> lock -> re-check before giving up on a fleet that keeps changing underneath. */
export const MAX_PLACEMENT_ATTEMPTS = 5;

interface Group {
  readonly key: string;
  readonly indexes: number[];
  readonly first: DeviceDraft;
}

/**
 * The plan applier (Nomad's plan_apply): places a batch on a snapshot of the fleet, then, inside
 * the caller's transaction, locks the chosen hosts' rows (in id order, so concurrent appliers never
 * deadlock on their first round), re-checks every host's free capacity against the locked rows, and
 * only then inserts the devices as SCHEDULED with their creation events and adds their resources to
 * the hosts' allocated_* columns and desired_revision. If another transaction took the capacity
 * first, the batch is placed again on a fresh read (the locked rows are then current), up to
 * MAX_PLACEMENT_ATTEMPTS rounds. All or nothing: a device that fits nowhere fails the whole batch
 * with RESOURCE_EXHAUSTED naming it and what was short, and nothing is written.
 */
export async function applyPlacement(
  trx: Transaction<Database>,
  batch: PlacementBatch,
): Promise<AppliedPlacement> {
  const applied = await applyPlan(trx, batch, ({ hostOf, locked }) =>
    insertDevices(trx, batch, hostOf, locked),
  );
  return { devices: applied.written, hostIds: applied.hostIds, attempts: applied.attempts };
}

/** A plan that fits its locked hosts, whose allocation is already added to them. */
export interface CommittedPlan {
  /** The host of every draft, in batch order. */
  readonly hostOf: readonly string[];
  /** The chosen hosts' rows as locked (before this plan's allocation was added). */
  readonly locked: readonly HostRow[];
}

/**
 * The plan applier's core, for callers that write something other than new device rows (a MIGRATE
 * drain moves existing ones): place, lock, re-check, add the allocation and bump the hosts'
 * desired_revision, then `write` in the same transaction. Same rounds and errors as applyPlacement.
 */
export async function applyPlan<T>(
  trx: Transaction<Database>,
  batch: PlacementBatch,
  write: (plan: CommittedPlan) => Promise<T>,
): Promise<{ written: T; hostIds: string[]; attempts: number }> {
  const groups = groupDrafts(batch.devices);
  const spreadTenant = batch.devices.some((d) => d.spreadTenant);
  let shortage = '';
  for (let attempt = 1; attempt <= MAX_PLACEMENT_ATTEMPTS; attempt++) {
    // Tenant spread needs this tenant's per-host counts, which the shared cache does not hold.
    const cached = attempt === 1 && !spreadTenant ? batch.cache?.peek() : undefined;
    let view = cached;
    if (!view) {
      const inputs = await loadHostInputs(trx, { tenantId: spreadTenant ? batch.tenantId : undefined });
      if (!spreadTenant) batch.cache?.replace(inputs);
      view = (spreadTenant ? undefined : batch.cache?.peek()) ?? fleetView(inputs);
    }
    let hostOf: string[];
    try {
      hostOf = planBatch(view, groups, batch);
    } catch (error) {
      // A cached fleet may be missing capacity that was freed or added since: never final.
      if (cached && error instanceof ResourceExhaustedError) continue;
      throw error;
    }
    // Synchronously after planning, so the next plan of this replica already sees these hosts taken.
    const reservation = batch.cache?.reserve(
      hostOf,
      batch.devices.map((d) => d.resources),
    );
    try {
      const hostIds = [...new Set(hostOf)].sort();
      const locked = await trx
        .selectFrom('host')
        .select(HOST_COLUMNS)
        .where('id', 'in', hostIds)
        .orderBy('id')
        .forUpdate()
        .execute();
      shortage = recheck(locked, hostOf, batch.devices);
      if (shortage) {
        batch.cache?.patch(locked);
        continue;
      }
      await commitPlan(trx, batch, hostOf, locked);
      batch.cache?.patch(afterCommit(locked, demands(hostOf, batch.devices)));
      const written = await write({ hostOf, locked });
      return { written, hostIds, attempts: attempt };
    } finally {
      reservation?.release();
    }
  }
  throw new ResourceExhaustedError(
    `the fleet changed under ${MAX_PLACEMENT_ATTEMPTS} placement rounds; last conflict: ${shortage}`,
  );
}

function afterCommit(locked: readonly HostRow[], byHost: ReadonlyMap<string, Demand>): HostRow[] {
  return locked.map((row) => {
    const d = byHost.get(row.id);
    if (!d) return row;
    return {
      ...row,
      allocated_vcpu_millicores: row.allocated_vcpu_millicores + d.cpu,
      allocated_memory_mib: row.allocated_memory_mib + d.memory,
      allocated_storage_gib: row.allocated_storage_gib + d.storage,
      allocated_devices: row.allocated_devices + d.devices,
    };
  });
}

function groupDrafts(devices: readonly DeviceDraft[]): Group[] {
  const groups = new Map<string, Group>();
  devices.forEach((d, index) => {
    const key = JSON.stringify([
      d.resources,
      d.image,
      Object.entries(d.nodeSelector).sort(),
      d.strategy,
      d.spreadTenant,
      d.pinHostId ?? '',
    ]);
    const group = groups.get(key);
    if (group) group.indexes.push(index);
    else groups.set(key, { key, indexes: [index], first: d });
  });
  return [...groups.values()];
}

/**
 * Places each group of identical asks in turn; each group sees the previous groups' devices
 * allocated. Returns the host of every device in batch order, or throws RESOURCE_EXHAUSTED.
 */
function planBatch(view: FleetView, groups: readonly Group[], batch: PlacementBatch): string[] {
  const hostOf: string[] = new Array(batch.devices.length);
  // The common case, one kind of device and no pin, places on the view's snapshot as it is.
  const single = groups.length === 1 && !groups[0]?.first.pinHostId;
  const hosts = single ? undefined : new Map(view.inputs.map((h) => [h.id, h]));
  for (const group of groups) {
    const d = group.first;
    let snapshot: Snapshot;
    if (!hosts) snapshot = view.snapshot();
    else {
      const pinned = d.pinHostId ? hosts.get(d.pinHostId) : undefined;
      snapshot = buildSnapshot(d.pinHostId ? (pinned ? [pinned] : []) : hosts.values());
    }
    const request: PlacementRequest = {
      count: group.indexes.length,
      resources: d.resources,
      image: d.image,
      tenantId: batch.tenantId,
      nodeSelector: d.nodeSelector,
      strategy: d.strategy,
      spreadTenant: d.spreadTenant,
      ...(batch.seed ? { seed: batch.seed } : {}),
    };
    const result = place(snapshot, request);
    if (!result.ok) {
      const index = group.indexes[result.failedIndex] ?? 0;
      const where = d.pinHostId ? ` (pinned to host ${JSON.stringify(d.pinHostId)})` : '';
      throw new ResourceExhaustedError(`requests[${index}] cannot be placed${where}: ${result.message}`);
    }
    for (const a of result.assignments) {
      const index = group.indexes[a.index];
      if (index === undefined) continue;
      hostOf[index] = a.hostId;
      const h = hosts?.get(a.hostId);
      if (h) hosts?.set(a.hostId, allocate(h, d.resources, batch.tenantId));
    }
  }
  return hostOf;
}

function allocate(h: HostInput, ask: ResourceAsk, tenantId: string): HostInput {
  return {
    ...withAllocation(h, { ...ask, devices: 1 }),
    tenantDevices: { ...h.tenantDevices, [tenantId]: (h.tenantDevices?.[tenantId] ?? 0) + 1 },
  };
}

interface Demand {
  cpu: number;
  memory: number;
  storage: number;
  devices: number;
}

function demands(hostOf: readonly string[], devices: readonly DeviceDraft[]): Map<string, Demand> {
  const out = new Map<string, Demand>();
  hostOf.forEach((hostId, i) => {
    const r = devices[i]?.resources;
    if (!r) return;
    const d = out.get(hostId) ?? { cpu: 0, memory: 0, storage: 0, devices: 0 };
    d.cpu += r.vcpuMillicores;
    d.memory += r.memoryMib;
    d.storage += r.storageGib;
    d.devices += 1;
    out.set(hostId, d);
  });
  return out;
}

// Overcommit ratios are floats: a sliver of tolerance keeps 0.1 * 3 from refusing an exact fit.
const EPSILON = 1e-6;

/** What the locked rows cannot take, as a sentence; empty when the plan still fits. */
export function recheck(
  locked: readonly HostRow[],
  hostOf: readonly string[],
  devices: readonly DeviceDraft[],
): string {
  const rows = new Map(locked.map((r) => [r.id, r]));
  for (const [hostId, d] of demands(hostOf, devices)) {
    const row = rows.get(hostId);
    const input = row && toHostInput(row);
    if (!row || !input) return `host ${hostId} is gone`;
    if (input.state !== 'ready') return `host ${hostId} is ${input.state}`;
    const checks: [string, number, number, string][] = [
      ['vcpu', d.cpu, row.capacity_vcpu_millicores * row.overcommit_cpu - row.allocated_vcpu_millicores, 'm'],
      [
        'memory',
        d.memory,
        row.capacity_memory_mib * row.overcommit_memory - row.allocated_memory_mib,
        ' MiB',
      ],
      ['storage', d.storage, row.capacity_storage_gib - row.allocated_storage_gib, ' GiB'],
      ['slots', d.devices, row.capacity_devices - row.allocated_devices, ' devices'],
    ];
    for (const [what, need, free, unit] of checks) {
      if (need > free + EPSILON)
        return `host ${hostId} is short of ${what}: needs ${need}${unit}, ${free}${unit} free`;
    }
  }
  return '';
}

async function commitPlan(
  trx: Transaction<Database>,
  batch: PlacementBatch,
  hostOf: readonly string[],
  locked: readonly HostRow[],
): Promise<void> {
  for (const row of locked) {
    const d = demands(hostOf, batch.devices).get(row.id);
    if (!d) continue;
    await trx
      .updateTable('host')
      .set((eb) => ({
        allocated_vcpu_millicores: eb('allocated_vcpu_millicores', '+', d.cpu),
        allocated_memory_mib: eb('allocated_memory_mib', '+', d.memory),
        allocated_storage_gib: eb('allocated_storage_gib', '+', d.storage),
        allocated_devices: eb('allocated_devices', '+', d.devices),
        desired_revision: eb('desired_revision', '+', 1),
        update_time: batch.now,
      }))
      .where('id', '=', row.id)
      .execute();
  }
}

async function insertDevices(
  trx: Transaction<Database>,
  batch: PlacementBatch,
  hostOf: readonly string[],
  locked: readonly HostRow[],
): Promise<Selectable<DeviceTable>[]> {
  const names = new Map(locked.map((r) => [r.id, r.name]));
  const inserted = await trx
    .insertInto('device')
    .values(
      batch.devices.map((d, i) => ({
        id: d.id,
        tenant_id: batch.tenantId,
        display_name: d.displayName,
        labels: JSON.stringify(d.labels),
        image_id: d.imageId,
        spec: JSON.stringify(d.spec),
        vcpu_millicores: d.resources.vcpuMillicores,
        memory_mib: d.resources.memoryMib,
        storage_gib: d.resources.storageGib,
        placement: JSON.stringify(d.placement),
        desired_power: d.desiredPower,
        restart_policy: d.restartPolicy,
        restart_generation: 0,
        spec_revision: 1,
        observed_spec_revision: 0,
        state: 'scheduled' as const,
        state_reason: '',
        state_message: '',
        adb_endpoint: '',
        host_id: hostOf[i] ?? null,
        create_time: batch.now,
        update_time: batch.now,
        state_change_time: batch.now,
      })),
    )
    .returningAll()
    .execute();
  await recordEvents(
    trx,
    batch.devices.map((d, i) => ({
      deviceId: d.id,
      tenantId: batch.tenantId,
      from: null,
      to: 'scheduled',
      reason: 'SCHEDULED',
      message: `placed on host ${names.get(hostOf[i] ?? '') ?? hostOf[i]}`,
      hostId: hostOf[i] ?? null,
    })),
    batch.now,
  );
  const byId = new Map(inserted.map((r) => [r.id, r]));
  return batch.devices.map((d) => byId.get(d.id)).filter((r) => r !== undefined);
}
