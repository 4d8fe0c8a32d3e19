// The plan applier (Nomad's plan_apply): the one writer of the host ledger (host.allocated_*) and of
// device host assignments. Inside the caller's transaction it admits plans against the quotas,
// places what they place on a view of the fleet, locks every host they touch in id order,
// re-checks the chosen hosts' free capacity against the locked rows, and only then writes: the
// ledger of each host (placements add, releases and moves' old hosts subtract), their desired
// revisions, the new devices, the moved devices' hosts. If another transaction took the capacity
// first, it places again on a fresh read (the locked rows are then current), up to
// MAX_PLACEMENT_ATTEMPTS rounds.
//
// Several plans apply together (the planner's group commit): each is all or nothing on its own —
// a plan refused by a quota, or with a device that fits nowhere, fails with RESOURCE_EXHAUSTED
// naming it and what was short, and nothing of it is written — while the others share one quota
// check, one placement pass, one round of host locks and one write of each table. Everything that
// can refuse a plan runs before the first write.
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
  withAssignments,
} from '../scheduler/index.js';
import { type DeviceRow, insertDevices, unassignHost } from '../store/devices.js';
import { adjustAllocation, lockHosts, type SchedulingRow } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { admitAll, type QuotaUse } from '../tenants/admission.js';
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

export type PlanOutcome = { ok: true; applied: AppliedPlan } | { ok: false; error: Error };

/** Rounds of place -> lock -> re-check before giving up on a fleet that keeps changing underneath. */
export const MAX_PLACEMENT_ATTEMPTS = 5;

/** Applies one plan; throws its refusal. */
export async function applyPlan(
  trx: Transaction<Database>,
  plan: Plan,
  context: ApplyContext,
): Promise<AppliedPlan> {
  const [outcome] = await applyPlans(trx, [plan], context);
  if (!outcome) throw new Error('no outcome for the plan');
  if (!outcome.ok) throw outcome.error;
  return outcome.applied;
}

interface Labelled {
  readonly ask: Ask;
  /** How errors name the device: `requests[3]` or `device dev-x`. */
  readonly label: string;
}

function asksOf(plan: Plan): Labelled[] {
  return [
    ...(plan.creates ?? []).map((c, i) => ({ ask: c.ask, label: `requests[${i}]` })),
    ...(plan.moves ?? []).map((m) => ({ ask: m.ask, label: `device ${m.deviceId}` })),
  ];
}

/** What leaves each host whatever the placement decides: releases and moves' old hosts. */
function leavingOf(plan: Plan): Map<string, Resources> {
  const leaving = new Map<string, Resources>();
  for (const r of plan.releases ?? []) {
    leaving.set(r.hostId, addResources(leaving.get(r.hostId) ?? NO_RESOURCES, r.resources));
  }
  for (const m of plan.moves ?? []) {
    if (m.fromHostId === null) continue;
    leaving.set(m.fromHostId, addResources(leaving.get(m.fromHostId) ?? NO_RESOURCES, m.ask.resources));
  }
  return leaving;
}

/**
 * Applies plans together, each all or nothing: one outcome per plan, in order. Throws only what is
 * not a refusal (a database error), which leaves the transaction to be rolled back.
 */
export async function applyPlans(
  trx: Transaction<Database>,
  plans: readonly Plan[],
  context: ApplyContext,
): Promise<PlanOutcome[]> {
  const refused = new Map<number, Error>();
  plans.forEach((plan, i) => {
    try {
      for (const m of plan.moves ?? []) assertTransition(m.deviceId, m.fromState, 'scheduled');
      if (!plan.tenantId && ((plan.creates?.length ?? 0) > 0 || plan.admit)) {
        throw new Error('a plan that asks for quota must name its tenant');
      }
    } catch (error) {
      refused.set(i, error as Error);
    }
  });
  const quota = await admitAll(
    trx,
    plans.map((plan, i) =>
      refused.has(i) ? undefined : { tenantId: plan.tenantId ?? '', delta: quotaDelta(plan) },
    ),
  );
  quota.forEach((error, i) => {
    if (error) refused.set(i, error);
  });

  const live = () => plans.map((_, i) => i).filter((i) => !refused.has(i));
  const placing = live().filter((i) => asksOf(plans[i] as Plan).length > 0);
  let hostOf = new Map<number, string[]>();
  let disconnected = false;
  let locked: SchedulingRow[] = [];
  let attempts = 1;
  if (placing.length === 0) {
    locked = await lockHosts(
      trx,
      live().flatMap((i) => [...leavingOf(plans[i] as Plan).keys()]),
    );
  } else {
    // Tenant spread needs per-host counts of one tenant, which the shared cache does not hold.
    const spreadTenant = placing.find((i) => asksOf(plans[i] as Plan).some((a) => a.ask.spreadTenant));
    const spreadFor = spreadTenant === undefined ? undefined : (plans[spreadTenant]?.tenantId ?? '');
    let shortage = '';
    for (attempts = 1; ; attempts++) {
      if (attempts > MAX_PLACEMENT_ATTEMPTS) {
        for (const i of placing) {
          if (!refused.has(i)) {
            refused.set(
              i,
              new ResourceExhaustedError(
                `the fleet changed under ${MAX_PLACEMENT_ATTEMPTS} placement rounds; last conflict: ${shortage}`,
              ),
            );
          }
        }
        break;
      }
      const cached = attempts === 1 && spreadFor === undefined ? context.fleet?.peek() : undefined;
      let view = cached;
      if (!view) {
        const inputs = await loadHostInputs(trx, { tenantId: spreadFor });
        if (spreadFor === undefined) context.fleet?.replace(inputs);
        view = fleetView(inputs);
      }
      const placer = new Placer(view);
      const failed = new Map<number, Error>();
      hostOf = new Map();
      for (const i of placing) {
        if (refused.has(i)) continue;
        const plan = plans[i] as Plan;
        try {
          hostOf.set(i, placer.place(asksOf(plan), plan.tenantId ?? '', plan.seed));
        } catch (error) {
          if (!(error instanceof ResourceExhaustedError)) throw error;
          failed.set(i, error);
        }
      }
      // A cached fleet may be missing capacity freed or added since: never final.
      if (cached && failed.size > 0) continue;
      for (const [i, error] of failed) refused.set(i, error);
      disconnected = placer.usedDisconnected;
      const placed = [...hostOf.keys()];
      locked = await lockHosts(trx, [
        ...placed.flatMap((i) => hostOf.get(i) ?? []),
        ...live().flatMap((i) => [...leavingOf(plans[i] as Plan).keys()]),
      ]);
      shortage = recheck(
        locked,
        placed.flatMap((i) => hostOf.get(i) ?? []),
        placed.flatMap((i) => asksOf(plans[i] as Plan)),
        disconnected,
      );
      if (!shortage) break;
      context.fleet?.patch(locked);
    }
  }
  const applied = await write(trx, plans, context.now, {
    live: live(),
    hostOf,
    locked,
    attempts,
  });
  return plans.map((_, i) => {
    const error = refused.get(i);
    if (error) return { ok: false, error };
    const a = applied.get(i);
    return a ? { ok: true, applied: a } : { ok: false, error: new Error('plan not applied') };
  });
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

function askKey(d: Ask): string {
  return JSON.stringify([
    d.resources,
    d.image,
    Object.entries(d.nodeSelector).sort(),
    d.strategy,
    d.spreadTenant,
    d.pinHostId ?? '',
  ]);
}

/**
 * Places plan after plan on one view of the fleet, each seeing the ones before it allocated. Hosts
 * with an open agent stream come first; when a plan fits nowhere there but hosts briefly without
 * one could take it, it goes there (an agent reconnecting still gets its desired set).
 */
class Placer {
  #connected: Snapshot;
  #all: Snapshot | undefined;
  /** Hosts as inputs, kept in step, for pinned asks (placed on a snapshot of one host). */
  #hosts: Map<string, HostInput>;
  #history: { request: PlacementRequest; hostIds: string[] }[] = [];
  usedDisconnected = false;

  constructor(private readonly view: FleetView) {
    this.#connected = view.snapshot(false);
    this.#hosts = new Map(view.inputs.map((h) => [h.id, h]));
  }

  /** The host of each ask, all placed or none (RESOURCE_EXHAUSTED naming the first that fits nowhere). */
  place(asks: readonly Labelled[], tenantId: string, seed: string | undefined): string[] {
    try {
      return this.#placeOn(asks, tenantId, seed, false);
    } catch (error) {
      if (!(error instanceof ResourceExhaustedError) || !this.view.hasDisconnected) throw error;
      try {
        const hostOf = this.#placeOn(asks, tenantId, seed, true);
        this.usedDisconnected = true;
        return hostOf;
      } catch {
        throw error;
      }
    }
  }

  #all_(): Snapshot {
    if (!this.#all) {
      let all = this.view.snapshot(true);
      for (const step of this.#history) {
        all = withAssignments(
          all,
          step.request,
          step.hostIds.map((hostId, index) => ({ index, hostId })),
        );
      }
      this.#all = all;
    }
    return this.#all;
  }

  #placeOn(
    asks: readonly Labelled[],
    tenantId: string,
    seed: string | undefined,
    includeDisconnected: boolean,
  ) {
    const groups = new Map<string, number[]>();
    asks.forEach((a, index) => {
      const key = askKey(a.ask);
      groups.set(key, [...(groups.get(key) ?? []), index]);
    });
    const hostOf: string[] = new Array(asks.length);
    const steps: { request: PlacementRequest; hostIds: string[] }[] = [];
    let connected = this.#connected;
    let all = includeDisconnected ? this.#all_() : undefined;
    const hosts = new Map(this.#hosts);
    for (const indexes of groups.values()) {
      const first = asks[indexes[0] ?? 0] as Labelled;
      const d = first.ask;
      const request: PlacementRequest = {
        count: indexes.length,
        resources: d.resources,
        image: d.image,
        tenantId,
        nodeSelector: d.nodeSelector,
        strategy: d.strategy,
        spreadTenant: d.spreadTenant,
        ...(seed ? { seed } : {}),
      };
      let snapshot: Snapshot;
      if (d.pinHostId) {
        const pinned = hosts.get(d.pinHostId);
        const usable =
          pinned && includeDisconnected && pinned.state === 'disconnected'
            ? { ...pinned, state: 'ready' as const }
            : pinned;
        snapshot = buildSnapshot(usable ? [usable] : []);
      } else snapshot = all ?? connected;
      const result = place(snapshot, request);
      if (!result.ok) {
        const label = asks[indexes[result.failedIndex] ?? 0]?.label ?? first.label;
        const where = d.pinHostId ? ` (pinned to host ${JSON.stringify(d.pinHostId)})` : '';
        throw new ResourceExhaustedError(`${label} cannot be placed${where}: ${result.message}`);
      }
      const hostIds = result.assignments.map((a) => a.hostId);
      result.assignments.forEach((a, k) => {
        const index = indexes[a.index];
        if (index !== undefined) hostOf[index] = hostIds[k] ?? a.hostId;
      });
      const assignments = hostIds.map((hostId, index) => ({ index, hostId }));
      // Every view in step: the snapshots that know the hosts, and the inputs.
      if (connected.indexById.size > 0 && hostIds.every((id) => connected.indexById.has(id))) {
        connected = withAssignments(connected, request, assignments);
      }
      if (all) all = withAssignments(all, request, assignments);
      for (const hostId of hostIds) {
        const h = hosts.get(hostId);
        if (h) hosts.set(hostId, allocate(h, d.resources, tenantId));
      }
      steps.push({ request, hostIds });
    }
    this.#connected = connected;
    if (all) this.#all = all;
    this.#hosts = hosts;
    this.#history.push(...steps);
    return hostOf;
  }
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
  /** The plans to write, in order. */
  live: number[];
  hostOf: Map<number, string[]>;
  locked: SchedulingRow[];
  attempts: number;
}

async function write(
  trx: Transaction<Database>,
  plans: readonly Plan[],
  now: Date,
  decided: Decided,
): Promise<Map<number, AppliedPlan>> {
  const { live, hostOf, locked } = decided;
  const net = new Map<string, Resources>();
  const add = (hostId: string, r: Resources, sign: 1 | -1) =>
    net.set(hostId, addResources(net.get(hostId) ?? NO_RESOURCES, r, sign));
  const changedOf = new Map<number, string[]>();
  const changed = new Set<string>();
  for (const i of live) {
    const plan = plans[i] as Plan;
    const placed = hostOf.get(i) ?? [];
    for (const [hostId, r] of arriving(placed, asksOf(plan))) add(hostId, r, 1);
    for (const [hostId, r] of leavingOf(plan)) add(hostId, r, -1);
    // Releases of deleted devices change no desired set (a device leaves it when its deletion starts).
    const from = (plan.moves ?? []).map((m) => m.fromHostId).filter((h): h is string => h !== null);
    const mine = [...new Set([...placed, ...from])].sort();
    changedOf.set(i, mine);
    for (const h of mine) changed.add(h);
  }
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

  const creating = live.flatMap((i) => {
    const plan = plans[i] as Plan;
    return (plan.creates ?? []).map((c, k) => ({
      c,
      tenantId: plan.tenantId ?? '',
      hostId: hostOf.get(i)?.[k] ?? null,
    }));
  });
  const inserted = await insertDevices(
    trx,
    creating.map(({ c, tenantId, hostId }) => ({
      ...c.row,
      tenant_id: tenantId,
      host_id: hostId,
      state: 'scheduled' as const,
      create_time: now,
      update_time: now,
      state_change_time: now,
    })),
  );
  await recordEvents(
    trx,
    creating.map(({ c, tenantId, hostId }) => ({
      deviceId: c.row.id,
      tenantId,
      from: null,
      to: 'scheduled',
      reason: 'SCHEDULED',
      message: `placed on host ${names.get(hostId ?? '') ?? hostId}`,
      hostId,
    })),
    now,
  );
  const byId = new Map(inserted.map((r) => [r.id, r]));
  const out = new Map<number, AppliedPlan>();
  for (const i of live) {
    const plan = plans[i] as Plan;
    const creates = plan.creates ?? [];
    const placed = hostOf.get(i) ?? [];
    for (const [k, m] of (plan.moves ?? []).entries()) {
      const to = placed[creates.length + k] ?? '';
      await transition(trx, {
        deviceId: m.deviceId,
        tenantId: m.tenantId,
        from: m.fromState,
        to: 'scheduled',
        reason: m.reason,
        message:
          m.fromHostId === null
            ? `placed on host ${nameOf(to)} by ${m.by}`
            : `moved from host ${nameOf(m.fromHostId)} to host ${nameOf(to)} by ${m.by}`,
        set: { host_id: to, adb_endpoint: '', observed_spec_revision: 0 },
        now,
      });
    }
    await unassignHost(
      trx,
      (plan.releases ?? []).filter((r) => r.unassign).map((r) => r.deviceId),
      now,
    );
    out.set(i, {
      hostOf: placed,
      created: creates.map((c) => byId.get(c.row.id)).filter((r) => r !== undefined),
      desiredChanged: changedOf.get(i) ?? [],
      hosts: after,
      attempts: decided.attempts,
    });
  }
  return out;
}
