// The plan applier (Nomad's plan_apply): the one writer of the host ledger (host.allocated_*) and of
// device host assignments. Inside the caller's transaction it admits plans against the quotas,
// places what they place on the replica's fleet view (placer.ts), locks every host they touch in
// id order, re-checks the chosen hosts' free capacity against the locked rows, and only then
// writes: the ledger of each host (placements add, releases and moves' old hosts subtract), their
// desired revisions, the new devices, the moved devices' hosts. The rows the ledger write returns
// go onto the view at once. If another transaction took the capacity first, the locked rows go
// onto the view and it places again, up to MAX_PLACEMENT_ATTEMPTS rounds; a plan that fits nowhere
// on the view is refused only once the view has caught up with every commit (FleetCache.catchUp).
//
// Several plans apply together (the planner's group commit): each is all or nothing on its own —
// a plan refused by a quota, or with a device that fits nowhere, fails with RESOURCE_EXHAUSTED
// naming it and what was short, and nothing of it is written — while the others share one quota
// check, one placement pass, one round of host locks and one write of each table. Everything that
// can refuse a plan runs before the first write.
import type { Transaction } from 'kysely';
import { assertTransition, recordEvents, transition } from '../devices/state-machine.js';
import { ResourceExhaustedError } from '../errors.js';
import { addResources, NO_RESOURCES, type Resources } from '../scheduler/index.js';
import { type DeviceRow, insertDevices, unassignHost } from '../store/devices.js';
import {
  type AllocationChange,
  adjustAllocations,
  lockHosts,
  type SchedulingRow,
  selectSchedulingRows,
} from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { admitAll, type QuotaUse } from '../tenants/admission.js';
import type { FleetCache } from './fleet-cache.js';
import { FleetView } from './fleet-view.js';
import { tenantDeviceCounts } from './host-input.js';
import { arriving, type Labelled, Placer, recheck } from './placer.js';
import type { Plan } from './plan.js';

export interface ApplyContext {
  readonly now: Date;
  /**
   * The replica's fleet view (made ready by the caller before opening the transaction): plans are
   * placed on it and the rows written go onto it. The caller tells it when the transaction commits
   * or rolls back. Absent: every round reads the fleet in the transaction.
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
    context.now,
  );
  quota.forEach((error, i) => {
    if (error) refused.set(i, error);
  });

  const live = () => plans.map((_, i) => i).filter((i) => !refused.has(i));
  const placing = live().filter((i) => asksOf(plans[i] as Plan).length > 0);
  const cache = context.fleet;
  let hostOf = new Map<number, string[]>();
  let locked: SchedulingRow[] = [];
  let placer: Placer | undefined;
  let attempts = 1;
  if (placing.length === 0) {
    locked = await lockHosts(
      trx,
      live().flatMap((i) => [...leavingOf(plans[i] as Plan).keys()]),
    );
  } else {
    const spreading = placing
      .filter((i) => asksOf(plans[i] as Plan).some((a) => a.ask.spreadTenant))
      .map((i) => plans[i]?.tenantId ?? '');
    // Whether the view is known to hold every commit so far (caught up in this transaction).
    let current = cache === undefined;
    let shortage = '';
    // A database error leaves the transaction to roll back: the view must not keep its holds.
    try {
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
        let view: FleetView;
        if (cache) {
          view = cache.view;
          await cache.tenantCounts(trx, spreading);
        } else {
          view = new FleetView(await selectSchedulingRows(trx));
          for (const tenantId of new Set(spreading)) {
            view.setTenantCounts(tenantId, await tenantDeviceCounts(trx, tenantId), 0);
          }
        }
        const deciding = performance.now();
        placer = new Placer(view);
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
        cache?.decided(performance.now() - deciding);
        // A view behind the database may lack capacity freed or added since: catch up and place again.
        if (cache && !current && failed.size > 0) {
          placer.release();
          await cache.catchUp(trx);
          current = true;
          continue;
        }
        for (const [i, error] of failed) refused.set(i, error);
        const placed = [...hostOf.keys()];
        locked = await lockHosts(trx, [
          ...placed.flatMap((i) => hostOf.get(i) ?? []),
          ...live().flatMap((i) => [...leavingOf(plans[i] as Plan).keys()]),
        ]);
        const checking = performance.now();
        shortage = recheck(
          locked,
          placed.flatMap((i) => hostOf.get(i) ?? []),
          placed.flatMap((i) => asksOf(plans[i] as Plan)),
          placer.usedDisconnected,
        );
        cache?.decided(performance.now() - checking);
        if (!shortage) break;
        // The locked rows are the hosts as they now are: place again on them.
        placer.release();
        placer = undefined;
        cache?.apply(locked, { uncommitted: true });
      }
    } catch (error) {
      placer?.release();
      throw error;
    }
  }
  let applied: Map<number, AppliedPlan>;
  try {
    applied = await write(trx, plans, context.now, { live: live(), hostOf, locked, attempts });
  } catch (error) {
    placer?.release();
    throw error;
  }
  // The rows as written carry the placements: they go onto the view, and the holds with them.
  const written = applied.values().next().value?.hosts ?? [];
  if (cache) {
    const applying = performance.now();
    cache.apply(written, { uncommitted: true, settled: placer?.written() ?? [] });
    cache.decided(performance.now() - applying);
  } else placer?.settle();
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
  const lockedIds = new Set(locked.map((r) => r.id));
  const changes: AllocationChange[] = [...net.keys()]
    .filter((hostId) => lockedIds.has(hostId))
    .sort()
    .map((hostId) => ({
      hostId,
      delta: net.get(hostId) ?? NO_RESOURCES,
      bumpRevision: changed.has(hostId),
    }));
  const after = await adjustAllocations(trx, changes, now);
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
