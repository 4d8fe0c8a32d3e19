// The plan applier (Nomad's plan_apply): the one writer of the host ledger (host.allocated_*) and of
// device host assignments. Inside the caller's transaction it admits the plan against the quotas,
// places what the plan places on a view of the fleet, locks every host the plan touches in id order,
// re-checks the chosen hosts' free capacity against the locked rows, and only then writes: the
// ledger of each host (placements add, releases and moves' old hosts subtract), their desired
// revisions, the new devices, the moved devices' hosts. If another transaction took the capacity
// first, it places again on a fresh read (the locked rows are then current), up to
// MAX_PLACEMENT_ATTEMPTS rounds. All or nothing: a device that fits nowhere fails the whole plan
// with RESOURCE_EXHAUSTED naming it and what was short, and nothing is written.
import type { Transaction } from 'kysely';
import { assertTransition, recordEvents, transition } from '../devices/state-machine.js';
import { ResourceExhaustedError } from '../errors.js';
import {
  addResources,
  buildSnapshot,
  type HostInput,
  NO_RESOURCES,
  type PlacementRequest,
  place,
  type Resources,
  type Snapshot,
} from '../scheduler/index.js';
import { type DeviceRow, insertDevices, unassignHost } from '../store/devices.js';
import { adjustAllocation, lockHosts, type SchedulingRow } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { addsNothing, admit, type QuotaUse } from '../tenants/admission.js';
import { type FleetCache, type FleetView, fleetView } from './fleet-cache.js';
import { allocationOf, loadHostInputs, toHostInput } from './host-input.js';
import type { Ask, Plan } from './plan.js';

export interface ApplyContext {
  readonly now: Date;
  /**
   * The replica's fleet (refreshed by the caller before opening the transaction): the first round
   * places on it instead of reading every host; fresh reads replace it. Absent: every round reads.
   */
  readonly fleet?: FleetCache | undefined;
}

export interface AppliedPlan {
  /** The host of each placement: creates then moves, in plan order. */
  readonly hostOf: readonly string[];
  /** The inserted device rows, in plan order, state SCHEDULED. */
  readonly created: readonly DeviceRow[];
  /** Hosts whose desired device set changed: tell the gateway once the transaction has committed. */
  readonly desiredChanged: readonly string[];
  /** The touched hosts' rows as this transaction leaves them. */
  readonly hosts: readonly SchedulingRow[];
  /** Placement rounds it took (1 unless concurrent plans took the capacity first). */
  readonly attempts: number;
}

/** Rounds of place -> lock -> re-check before giving up on a fleet that keeps changing underneath. */
export const MAX_PLACEMENT_ATTEMPTS = 5;

export async function applyPlan(
  trx: Transaction<Database>,
  plan: Plan,
  context: ApplyContext,
): Promise<AppliedPlan> {
  const creates = plan.creates ?? [];
  const moves = plan.moves ?? [];
  const releases = plan.releases ?? [];
  // Checked before anything is written, so a refused move leaves the transaction as it was.
  for (const m of moves) assertTransition(m.deviceId, m.fromState, 'scheduled');
  const delta = quotaDelta(plan);
  if (!addsNothing(delta)) {
    if (!plan.tenantId) throw new Error('a plan that asks for quota must name its tenant');
    await admit(trx, plan.tenantId, delta);
  }
  const asks: Labelled[] = [
    ...creates.map((c, i) => ({ ask: c.ask, label: `requests[${i}]` })),
    ...moves.map((m) => ({ ask: m.ask, label: `device ${m.deviceId}` })),
  ];
  // What leaves each host, whatever the placement decides.
  const leaving = new Map<string, Resources>();
  for (const r of releases)
    leaving.set(r.hostId, addResources(leaving.get(r.hostId) ?? NO_RESOURCES, r.resources));
  for (const m of moves) {
    leaving.set(m.fromHostId, addResources(leaving.get(m.fromHostId) ?? NO_RESOURCES, m.ask.resources));
  }

  let hostOf: string[] = [];
  let locked: SchedulingRow[] = [];
  let attempts = 0;
  if (asks.length === 0) {
    locked = await lockHosts(trx, [...leaving.keys()]);
  } else {
    const tenantId = plan.tenantId ?? '';
    const spreadTenant = asks.some((a) => a.ask.spreadTenant);
    let shortage = '';
    for (attempts = 1; ; attempts++) {
      if (attempts > MAX_PLACEMENT_ATTEMPTS) {
        throw new ResourceExhaustedError(
          `the fleet changed under ${MAX_PLACEMENT_ATTEMPTS} placement rounds; last conflict: ${shortage}`,
        );
      }
      // Tenant spread needs this tenant's per-host counts, which the shared cache does not hold.
      const cached = attempts === 1 && !spreadTenant ? context.fleet?.peek() : undefined;
      let view = cached;
      if (!view) {
        const inputs = await loadHostInputs(trx, { tenantId: spreadTenant ? tenantId : undefined });
        if (!spreadTenant) context.fleet?.replace(inputs);
        view = fleetView(inputs);
      }
      let placed: { hostOf: string[]; disconnected: boolean };
      try {
        placed = placeAsks(view, asks, tenantId, plan.seed);
      } catch (error) {
        // A cached fleet may be missing capacity freed or added since: never final.
        if (cached && error instanceof ResourceExhaustedError) continue;
        throw error;
      }
      hostOf = placed.hostOf;
      locked = await lockHosts(trx, [...hostOf, ...leaving.keys()]);
      shortage = recheck(locked, hostOf, asks, placed.disconnected);
      if (!shortage) break;
      context.fleet?.patch(locked);
    }
  }
  return write(trx, plan, context.now, { hostOf, locked, leaving, attempts: Math.max(1, attempts) });
}

/** What the plan adds to its tenant's use: the new devices, and what plan.admit asks. */
function quotaDelta(plan: Plan): QuotaUse {
  let devices = plan.admit?.devices ?? 0;
  let runningDevices = plan.admit?.runningDevices ?? 0;
  let vcpuMillicores = plan.admit?.vcpuMillicores ?? 0;
  let memoryMib = plan.admit?.memoryMib ?? 0;
  for (const c of plan.creates ?? []) {
    devices += 1;
    if (c.row.desired_power !== 'running') continue;
    runningDevices += 1;
    vcpuMillicores += c.ask.resources.vcpuMillicores;
    memoryMib += c.ask.resources.memoryMib;
  }
  return { devices, runningDevices, vcpuMillicores, memoryMib };
}

interface Labelled {
  readonly ask: Ask;
  /** How errors name the device: `requests[3]` or `device dev-x`. */
  readonly label: string;
}

interface Group {
  readonly indexes: number[];
  readonly first: Labelled;
}

function groupAsks(asks: readonly Labelled[]): Group[] {
  const groups = new Map<string, Group>();
  asks.forEach((a, index) => {
    const d = a.ask;
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
    else groups.set(key, { indexes: [index], first: a });
  });
  return [...groups.values()];
}

/**
 * Places on hosts with an open agent stream; when nothing fits there but hosts briefly without one
 * could take the plan, places there instead (an agent reconnecting still gets its desired set).
 */
function placeAsks(
  view: FleetView,
  asks: readonly Labelled[],
  tenantId: string,
  seed: string | undefined,
): { hostOf: string[]; disconnected: boolean } {
  try {
    return { hostOf: placeOn(view, asks, tenantId, seed, false), disconnected: false };
  } catch (error) {
    if (!(error instanceof ResourceExhaustedError) || !view.hasDisconnected) throw error;
    try {
      return { hostOf: placeOn(view, asks, tenantId, seed, true), disconnected: true };
    } catch {
      throw error;
    }
  }
}

/**
 * Places each group of identical asks in turn; each group sees the previous groups' devices
 * allocated. Returns the host of every ask in order, or throws RESOURCE_EXHAUSTED.
 */
function placeOn(
  view: FleetView,
  asks: readonly Labelled[],
  tenantId: string,
  seed: string | undefined,
  includeDisconnected: boolean,
): string[] {
  const groups = groupAsks(asks);
  const hostOf: string[] = new Array(asks.length);
  // The common case, one kind of device and no pin, places on the view's snapshot as it is.
  const single = groups.length === 1 && !groups[0]?.first.ask.pinHostId;
  const hosts = single
    ? undefined
    : new Map(
        view.inputs.map((h) => [
          h.id,
          includeDisconnected && h.state === 'disconnected' ? { ...h, state: 'ready' as const } : h,
        ]),
      );
  for (const group of groups) {
    const d = group.first.ask;
    let snapshot: Snapshot;
    if (!hosts) snapshot = view.snapshot(includeDisconnected);
    else {
      const pinned = d.pinHostId ? hosts.get(d.pinHostId) : undefined;
      snapshot = buildSnapshot(d.pinHostId ? (pinned ? [pinned] : []) : hosts.values());
    }
    const request: PlacementRequest = {
      count: group.indexes.length,
      resources: d.resources,
      image: d.image,
      tenantId,
      nodeSelector: d.nodeSelector,
      strategy: d.strategy,
      spreadTenant: d.spreadTenant,
      ...(seed ? { seed } : {}),
    };
    const result = place(snapshot, request);
    if (!result.ok) {
      const index = group.indexes[result.failedIndex] ?? 0;
      const label = asks[index]?.label ?? group.first.label;
      const where = d.pinHostId ? ` (pinned to host ${JSON.stringify(d.pinHostId)})` : '';
      throw new ResourceExhaustedError(`${label} cannot be placed${where}: ${result.message}`);
    }
    for (const a of result.assignments) {
      const index = group.indexes[a.index];
      if (index === undefined) continue;
      hostOf[index] = a.hostId;
      const h = hosts?.get(a.hostId);
      if (h) hosts?.set(a.hostId, allocate(h, d.resources, tenantId));
    }
  }
  return hostOf;
}

function allocate(h: HostInput, ask: Resources, tenantId: string): HostInput {
  return {
    ...h,
    allocated: addResources(h.allocated ?? NO_RESOURCES, { ...ask, devices: 1 }),
    tenantDevices: { ...h.tenantDevices, [tenantId]: (h.tenantDevices?.[tenantId] ?? 0) + 1 },
  };
}

/** What the placed asks add to each chosen host. */
function arriving(hostOf: readonly string[], asks: readonly Labelled[]): Map<string, Resources> {
  const out = new Map<string, Resources>();
  hostOf.forEach((hostId, i) => {
    const r = asks[i]?.ask.resources;
    if (r) out.set(hostId, addResources(out.get(hostId) ?? NO_RESOURCES, { ...r, devices: 1 }));
  });
  return out;
}

// Overcommit ratios are floats: a sliver of tolerance keeps 0.1 * 3 from refusing an exact fit.
const EPSILON = 1e-6;

/** What the locked rows cannot take, as a sentence; empty when the placement still fits. */
export function recheck(
  locked: readonly SchedulingRow[],
  hostOf: readonly string[],
  asks: readonly Labelled[],
  disconnectedAllowed: boolean,
): string {
  const rows = new Map(locked.map((r) => [r.id, r]));
  for (const [hostId, d] of arriving(hostOf, asks)) {
    const row = rows.get(hostId);
    const input = row && toHostInput(row);
    if (!row || !input) return `host ${hostId} is gone`;
    if (input.state !== 'ready' && !(disconnectedAllowed && input.state === 'disconnected')) {
      return `host ${hostId} is ${input.state}`;
    }
    const checks: [string, number, number, string][] = [
      [
        'vcpu',
        d.vcpuMillicores,
        row.capacity_vcpu_millicores * row.overcommit_cpu - row.allocated_vcpu_millicores,
        'm',
      ],
      [
        'memory',
        d.memoryMib,
        row.capacity_memory_mib * row.overcommit_memory - row.allocated_memory_mib,
        ' MiB',
      ],
      ['storage', d.storageGib, row.capacity_storage_gib - row.allocated_storage_gib, ' GiB'],
      ['slots', d.devices, row.capacity_devices - row.allocated_devices, ' devices'],
    ];
    for (const [what, need, free, unit] of checks) {
      if (need > free + EPSILON)
        return `host ${hostId} is short of ${what}: needs ${need}${unit}, ${free}${unit} free`;
    }
  }
  return '';
}

interface Decided {
  hostOf: string[];
  locked: SchedulingRow[];
  leaving: Map<string, Resources>;
  attempts: number;
}

async function write(
  trx: Transaction<Database>,
  plan: Plan,
  now: Date,
  decided: Decided,
): Promise<AppliedPlan> {
  const { hostOf, locked, leaving } = decided;
  const creates = plan.creates ?? [];
  const moves = plan.moves ?? [];
  const asks = [
    ...creates.map((c) => ({ ask: c.ask, label: '' })),
    ...moves.map((m) => ({ ask: m.ask, label: '' })),
  ];
  const net = arriving(hostOf, asks);
  for (const [hostId, r] of leaving) net.set(hostId, addResources(net.get(hostId) ?? NO_RESOURCES, r, -1));
  // Releases of deleted devices change no desired set (a device leaves it when its deletion starts).
  const changed = new Set<string>([...hostOf, ...moves.map((m) => m.fromHostId)]);
  const rows = new Map(locked.map((r) => [r.id, r]));
  const after: SchedulingRow[] = [];
  for (const hostId of [...net.keys()].sort()) {
    const delta = net.get(hostId) ?? NO_RESOURCES;
    const row = rows.get(hostId);
    if (!row) continue;
    await adjustAllocation(trx, hostId, delta, { bumpRevision: changed.has(hostId), now });
    const allocated = addResources(allocationOf(row), delta);
    after.push({
      ...row,
      allocated_vcpu_millicores: allocated.vcpuMillicores,
      allocated_memory_mib: allocated.memoryMib,
      allocated_storage_gib: allocated.storageGib,
      allocated_devices: allocated.devices,
    });
  }
  const names = new Map(locked.map((r) => [r.id, r.name]));
  const nameOf = (id: string) => `${names.get(id) ?? id} (${id})`;
  let created: DeviceRow[] = [];
  if (creates.length > 0) {
    const tenantId = plan.tenantId ?? '';
    const inserted = await insertDevices(
      trx,
      creates.map((c, i) => ({
        ...c.row,
        tenant_id: tenantId,
        host_id: hostOf[i] ?? null,
        state: 'scheduled' as const,
        create_time: now,
        update_time: now,
        state_change_time: now,
      })),
    );
    await recordEvents(
      trx,
      creates.map((c, i) => ({
        deviceId: c.row.id,
        tenantId,
        from: null,
        to: 'scheduled',
        reason: 'SCHEDULED',
        message: `placed on host ${names.get(hostOf[i] ?? '') ?? hostOf[i]}`,
        hostId: hostOf[i] ?? null,
      })),
      now,
    );
    const byId = new Map(inserted.map((r) => [r.id, r]));
    created = creates.map((c) => byId.get(c.row.id)).filter((r) => r !== undefined);
  }
  for (const [i, m] of moves.entries()) {
    const to = hostOf[creates.length + i] ?? '';
    await transition(trx, {
      deviceId: m.deviceId,
      tenantId: m.tenantId,
      from: m.fromState,
      to: 'scheduled',
      reason: m.reason,
      message: `moved from host ${nameOf(m.fromHostId)} to host ${nameOf(to)} by ${m.by}`,
      set: { host_id: to, adb_endpoint: '', observed_spec_revision: 0 },
      now,
    });
  }
  await unassignHost(
    trx,
    (plan.releases ?? []).filter((r) => r.unassign).map((r) => r.deviceId),
    now,
  );
  return {
    hostOf,
    created,
    desiredChanged: [...changed].sort(),
    hosts: after,
    attempts: decided.attempts,
  };
}
