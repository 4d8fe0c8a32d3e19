// What agents observe, written through the device state machine. The agent is the source of truth
// for what runs; the control plane for what should exist. So an agent report moves a device along
// legal transitions (through the intermediate states it must have passed), never deletes a device
// the control plane still wants, and completes a deletion the control plane asked for.
import type { agentv1 } from '@cphone/proto';
import type { Kysely, Transaction } from 'kysely';
import { canTransition, stateFromProto, transition } from '../devices/state-machine.js';
import type { Database, DeviceStateName } from '../store/schema.js';

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

type Row = {
  id: string;
  tenant_id: string;
  host_id: string | null;
  state: DeviceStateName;
  state_message: string;
  vcpu_millicores: number;
  memory_mib: number;
  storage_gib: number;
  adb_endpoint: string;
  observed_spec_revision: number;
};

async function releaseAllocation(trx: Transaction<Database>, hostId: string, row: Row): Promise<void> {
  await trx
    .updateTable('host')
    .set((eb) => ({
      allocated_vcpu_millicores: eb.fn('greatest', [
        eb('allocated_vcpu_millicores', '-', row.vcpu_millicores),
        eb.lit(0),
      ]),
      allocated_memory_mib: eb.fn('greatest', [eb('allocated_memory_mib', '-', row.memory_mib), eb.lit(0)]),
      allocated_storage_gib: eb.fn('greatest', [
        eb('allocated_storage_gib', '-', row.storage_gib),
        eb.lit(0),
      ]),
      allocated_devices: eb.fn('greatest', [eb('allocated_devices', '-', 1), eb.lit(0)]),
    }))
    .where('id', '=', hostId)
    .execute();
}

async function markDeleted(
  trx: Transaction<Database>,
  hostId: string,
  row: Row,
  reason: string,
  now: Date,
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
  await releaseAllocation(trx, hostId, row);
  return { deviceId: row.id, from: 'deleting', to: 'deleted' };
}

async function apply(
  trx: Transaction<Database>,
  hostId: string,
  row: Row,
  observed: agentv1.ObservedDevice,
  now: Date,
): Promise<ObservedChange | undefined> {
  const to = stateFromProto(observed.state);
  const from = row.state;
  if (from === 'deleted') return undefined;
  if (from === 'deleting') {
    return to === 'deleted'
      ? markDeleted(trx, hostId, row, observed.reason || 'AGENT_DELETED', now)
      : undefined;
  }
  const set = {
    adb_endpoint: observed.adbEndpoint,
    observed_spec_revision: Number(observed.specRevision),
  };
  if (to === from) {
    if (row.adb_endpoint !== set.adb_endpoint || row.observed_spec_revision !== set.observed_spec_revision) {
      await trx
        .updateTable('device')
        .set({ ...set, update_time: now })
        .where('id', '=', row.id)
        .execute();
    }
    return undefined;
  }
  const path = to && AGENT_STATES.has(to) ? pathTo(from, to) : undefined;
  if (!to || !path) {
    const seen = to ?? `state ${observed.state}`;
    const refused = `agent observes ${seen}${observed.reason ? ` (${observed.reason})` : ''}${observed.message ? `: ${observed.message}` : ''}`;
    if (row.state_message !== refused) {
      await trx
        .updateTable('device')
        .set({ state_message: refused, update_time: now })
        .where('id', '=', row.id)
        .execute();
    }
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
  /**
   * Called after the commit with the devices of this host that reached STOPPED or ERROR (nothing
   * of them runs any more): a MIGRATE drain of the host can move them now.
   */
  onStopped?: ((hostId: string, deviceIds: string[]) => void) | undefined;
}

/** Applies a host's reports in one transaction; returns the state changes and refusals. */
export async function applyObserved(
  db: Kysely<Database>,
  hostId: string,
  reports: readonly agentv1.ObservedDevice[],
  options: ApplyObservedOptions,
): Promise<ObservedChange[]> {
  if (!reports.some((r) => r.deviceId !== '') && !options.fullInventory) return [];
  const changes = await db.transaction().execute((trx) => applyObservedIn(trx, hostId, reports, options));
  notifyStopped(hostId, changes, options.onStopped);
  return changes;
}

/** Calls `onStopped` (after a commit) with the changes that left a device stopped or failed. */
export function notifyStopped(
  hostId: string,
  changes: readonly ObservedChange[],
  onStopped: ApplyObservedOptions['onStopped'],
): void {
  if (!onStopped) return;
  const ids = changes
    .filter((c) => !c.refused && c.from !== c.to && (c.to === 'stopped' || c.to === 'error'))
    .map((c) => c.deviceId);
  if (ids.length > 0) onStopped(hostId, ids);
}

/** applyObserved inside the caller's transaction. */
export async function applyObservedIn(
  trx: Transaction<Database>,
  hostId: string,
  reports: readonly agentv1.ObservedDevice[],
  options: ApplyObservedOptions,
): Promise<ObservedChange[]> {
  const ids = [...new Set(reports.map((r) => r.deviceId).filter((id) => id !== ''))];
  const rows = await trx
    .selectFrom('device')
    .select([
      'id',
      'tenant_id',
      'host_id',
      'state',
      'state_message',
      'vcpu_millicores',
      'memory_mib',
      'storage_gib',
      'adb_endpoint',
      'observed_spec_revision',
    ])
    .where((eb) => {
      const reported = ids.length > 0 ? eb('id', 'in', ids) : eb.lit(false);
      return options.fullInventory
        ? eb.or([reported, eb.and([eb('host_id', '=', hostId), eb('state', '=', 'deleting')])])
        : reported;
    })
    .orderBy('id')
    .forUpdate()
    .execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  const changes: ObservedChange[] = [];
  for (const report of reports) {
    const row = byId.get(report.deviceId);
    // A device moved elsewhere or unknown here: the desired set tells the agent to remove it.
    if (!row || row.host_id !== hostId) continue;
    const change = await apply(trx, hostId, row, report, options.now);
    if (change) changes.push(change);
    byId.delete(report.deviceId);
  }
  if (options.fullInventory) {
    for (const row of byId.values()) {
      if (row.host_id === hostId && row.state === 'deleting') {
        changes.push(await markDeleted(trx, hostId, row, 'ABSENT_FROM_INVENTORY', options.now));
      }
    }
  }
  return changes;
}
