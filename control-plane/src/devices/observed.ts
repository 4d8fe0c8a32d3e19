// What agents observe, written through the device state machine. The agent is the source of truth
// for what runs; the control plane for what should exist. So an agent report moves a device along
// legal transitions (through the intermediate states it must have passed), never deletes a device
// the control plane still wants, and completes a deletion the control plane asked for.
//
// A deletion completes when the host no longer holds the device, whatever the agent has seen: its
// agent reports it DELETED, its Hello inventory lacks it, or its stream was never told of it (a
// device created and deleted between two syncs). Completing releases its resources through the
// plan applier, in the same transaction.
import type { agentv1 } from '@cphone/proto';
import type { Kysely, Transaction } from 'kysely';
import { type AppliedPlan, applyPlan } from '../placement/applier.js';
import { type DeviceRow, lockDevices, recordObserved } from '../store/devices.js';
import type { Database, DeviceStateName } from '../store/schema.js';
import { canTransition, stateFromProto, transition } from './state-machine.js';

export interface ObservedChange {
  deviceId: string;
  from: DeviceStateName;
  /** The state the device is in now; equal to `from` when the report was refused. */
  to: DeviceStateName;
  /** Set when the agent's view could not be applied; recorded in state_message. */
  refused?: string;
}

// States an agent may report for a device the control plane keeps; deletion is the control plane's.
const AGENT_STATES: ReadonlySet<DeviceStateName> = new Set([
  'creating',
  'booting',
  'running',
  'stopping',
  'stopped',
  'error',
]);

// Intermediate states a device may have passed through between two reports.
const VIA: readonly DeviceStateName[] = ['creating', 'booting', 'running', 'stopping', 'stopped'];

/** The shortest legal path from `from` to `to` (without `from`), or undefined. */
export function pathTo(from: DeviceStateName, to: DeviceStateName): DeviceStateName[] | undefined {
  if (canTransition(from, to)) return [to];
  const seen = new Set<DeviceStateName>([from]);
  let frontier: DeviceStateName[][] = [[]];
  for (let depth = 0; depth < 3; depth++) {
    const next: DeviceStateName[][] = [];
    for (const path of frontier) {
      const at = path.at(-1) ?? from;
      for (const via of VIA) {
        if (seen.has(via) || !canTransition(at, via)) continue;
        if (canTransition(via, to)) return [...path, via, to];
        seen.add(via);
        next.push([...path, via]);
      }
    }
    frontier = next;
  }
  return undefined;
}

type Row = DeviceRow;

/** DELETING -> DELETED, and the device's resources leave its host's ledger. */
async function markDeleted(
  trx: Transaction<Database>,
  hostId: string,
  row: Row,
  reason: string,
  now: Date,
  applied: AppliedPlan[],
): Promise<ObservedChange> {
  await transition(trx, {
    deviceId: row.id,
    tenantId: row.tenant_id,
    from: 'deleting',
    to: 'deleted',
    reason,
    set: { adb_endpoint: '' },
    now,
  });
  applied.push(
    await applyPlan(
      trx,
      {
        releases: [
          {
            deviceId: row.id,
            hostId,
            resources: {
              vcpuMillicores: row.vcpu_millicores,
              memoryMib: row.memory_mib,
              storageGib: row.storage_gib,
              devices: 1,
            },
          },
        ],
      },
      { now },
    ),
  );
  return { deviceId: row.id, from: 'deleting', to: 'deleted' };
}

async function apply(
  trx: Transaction<Database>,
  hostId: string,
  row: Row,
  observed: agentv1.ObservedDevice,
  now: Date,
  applied: AppliedPlan[],
): Promise<ObservedChange | undefined> {
  const to = stateFromProto(observed.state);
  const from = row.state;
  if (from === 'deleted') return undefined;
  if (from === 'deleting') {
    return to === 'deleted'
      ? markDeleted(trx, hostId, row, observed.reason || 'AGENT_DELETED', now, applied)
      : undefined;
  }
  const set = {
    adb_endpoint: observed.adbEndpoint,
    observed_spec_revision: Number(observed.specRevision),
  };
  if (to === from) {
    if (row.adb_endpoint !== set.adb_endpoint || row.observed_spec_revision !== set.observed_spec_revision) {
      await recordObserved(trx, row.id, set, now);
    }
    return undefined;
  }
  const path = to && AGENT_STATES.has(to) ? pathTo(from, to) : undefined;
  if (!to || !path) {
    const seen = to ?? `state ${observed.state}`;
    const refused = `agent observes ${seen}${observed.reason ? ` (${observed.reason})` : ''}${observed.message ? `: ${observed.message}` : ''}`;
    if (row.state_message !== refused) await recordObserved(trx, row.id, { state_message: refused }, now);
    return { deviceId: row.id, from, to: from, refused };
  }
  let at: DeviceStateName = from;
  for (const step of path) {
    const last = step === to;
    await transition(trx, {
      deviceId: row.id,
      tenantId: row.tenant_id,
      from: at,
      to: step,
      reason: last ? observed.reason : 'AGENT_REPORTED',
      message: last ? observed.message : '',
      set,
      now,
    });
    at = step;
  }
  return { deviceId: row.id, from, to: at };
}

export interface ApplyObservedOptions {
  /** The reports are the host's whole inventory (Hello): devices being deleted that it no longer holds are done. */
  fullInventory: boolean;
  now: Date;
}

export interface Observed {
  /** State changes and refusals, in report order. */
  readonly changes: ObservedChange[];
  /** Plans the changes applied (deletions releasing their resources): settle them after the commit. */
  readonly applied: AppliedPlan[];
}

/** Applies a host's reports in one transaction. */
export async function applyObserved(
  db: Kysely<Database>,
  hostId: string,
  reports: readonly agentv1.ObservedDevice[],
  options: ApplyObservedOptions,
): Promise<Observed> {
  if (!reports.some((r) => r.deviceId !== '') && !options.fullInventory) return { changes: [], applied: [] };
  return db.transaction().execute((trx) => applyObservedIn(trx, hostId, reports, options));
}

/** applyObserved inside the caller's transaction (a Hello's; it locks the host after these devices). */
export async function applyObservedIn(
  trx: Transaction<Database>,
  hostId: string,
  reports: readonly agentv1.ObservedDevice[],
  options: ApplyObservedOptions,
): Promise<Observed> {
  const ids = [...new Set(reports.map((r) => r.deviceId).filter((id) => id !== ''))];
  const deleting = options.fullInventory ? await deletingOn(trx, hostId) : [];
  const rows = await lockDevices(trx, [...ids, ...deleting]);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const changes: ObservedChange[] = [];
  const applied: AppliedPlan[] = [];
  for (const report of reports) {
    const row = byId.get(report.deviceId);
    // A device moved elsewhere or unknown here: the desired set tells the agent to remove it.
    if (!row || row.host_id !== hostId) continue;
    const change = await apply(trx, hostId, row, report, options.now, applied);
    if (change) changes.push(change);
    byId.delete(report.deviceId);
  }
  if (options.fullInventory) {
    for (const row of byId.values()) {
      if (row.host_id === hostId && row.state === 'deleting') {
        changes.push(await markDeleted(trx, hostId, row, 'ABSENT_FROM_INVENTORY', options.now, applied));
      }
    }
  }
  return { changes, applied };
}

/**
 * Completes the deletion of devices of the host that its agent was never told of (the stream that
 * would have told it has not sent them, and its inventory at Hello did not hold them): there is
 * nothing of them on the host to remove.
 */
export async function completeUnseenDeletions(
  db: Kysely<Database>,
  hostId: string,
  deviceIds: readonly string[],
  now: Date,
): Promise<Observed> {
  if (deviceIds.length === 0) return { changes: [], applied: [] };
  return db.transaction().execute(async (trx) => {
    const rows = await lockDevices(trx, deviceIds);
    const changes: ObservedChange[] = [];
    const applied: AppliedPlan[] = [];
    for (const row of rows) {
      if (row.host_id !== hostId || row.state !== 'deleting') continue;
      changes.push(await markDeleted(trx, hostId, row, 'NEVER_CREATED', now, applied));
    }
    return { changes, applied };
  });
}

/** Devices of the host in DELETING. */
export async function deletingOn(
  db: Kysely<Database> | Transaction<Database>,
  hostId: string,
): Promise<string[]> {
  const rows = await db
    .selectFrom('device')
    .select('id')
    .where('host_id', '=', hostId)
    .where('state', '=', 'deleting')
    .execute();
  return rows.map((r) => r.id);
}
