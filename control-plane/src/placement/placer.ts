// The applier's decision step, free of I/O: plan after plan placed on the replica's fleet view,
// each seeing the ones before it (their placements are held on the view), and the re-check of a
// placement against the host rows as locked. The applier (applier.ts) does the reads and writes
// around it; the scheduler bench drives the same two steps without a database.
import { ResourceExhaustedError } from '../errors.js';
import {
  addResources,
  buildSnapshot,
  NO_RESOURCES,
  type PlacementRequest,
  place,
  type Resources,
} from '../scheduler/index.js';
import type { SchedulingRow } from '../store/hosts.js';
import type { FleetView, Hold } from './fleet-view.js';
import { toHostInput } from './host-input.js';
import type { Ask } from './plan.js';

export interface Labelled {
  readonly ask: Ask;
  /** How errors name the device: `requests[3]` or `device dev-x`. */
  readonly label: string;
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
 * Places plan after plan on one fleet view. Hosts with an open agent stream come first; when a
 * plan fits nowhere there but hosts briefly without one could take it, it goes there (an agent
 * reconnecting still gets its desired set). Every placement is held on the view until the caller
 * settles the holds (written) or releases them (not written).
 */
export class Placer {
  readonly #holds: Hold[] = [];
  usedDisconnected = false;

  constructor(private readonly view: FleetView) {}

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

  /** Takes back every placement held: none of them will be written. */
  release(): void {
    for (const hold of this.#holds.splice(0)) this.view.release(hold);
  }

  /** The placements were written and the hosts' rows applied to the view: the holds go. */
  settle(): void {
    for (const hold of this.#holds.splice(0)) this.view.settle(hold);
  }

  /**
   * The placements were written: hands over the holds, to be settled by the view together with
   * the rows written (FleetView.apply), and keeps none.
   */
  written(): Hold[] {
    return this.#holds.splice(0);
  }

  #placeOn(
    asks: readonly Labelled[],
    tenantId: string,
    seed: string | undefined,
    includeDisconnected: boolean,
  ): string[] {
    // Asks alike are placed as one request (a batch); a single ask needs no key.
    const groups = new Map<string, number[]>();
    if (asks.length === 1) groups.set('', [0]);
    else {
      asks.forEach((a, index) => {
        const key = askKey(a.ask);
        const group = groups.get(key);
        if (group) group.push(index);
        else groups.set(key, [index]);
      });
    }
    const hostOf: string[] = new Array(asks.length);
    const mine: Hold[] = [];
    try {
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
        let snapshot = this.view.snapshot(includeDisconnected);
        if (d.pinHostId) {
          const pinned = this.view.input(d.pinHostId);
          const usable =
            pinned && includeDisconnected && pinned.state === 'disconnected'
              ? { ...pinned, state: 'ready' as const }
              : pinned;
          snapshot = buildSnapshot(usable ? [usable] : []);
        }
        const result = place(snapshot, request);
        if (!result.ok) {
          const label = asks[indexes[result.failedIndex] ?? 0]?.label ?? first.label;
          const where = d.pinHostId ? ` (pinned to host ${JSON.stringify(d.pinHostId)})` : '';
          throw new ResourceExhaustedError(`${label} cannot be placed${where}: ${result.message}`);
        }
        for (const a of result.assignments) {
          const index = indexes[a.index];
          if (index !== undefined) hostOf[index] = a.hostId;
          mine.push(this.view.hold(a.hostId, d.resources, tenantId));
        }
      }
    } catch (error) {
      for (const hold of mine) this.view.release(hold);
      throw error;
    }
    this.#holds.push(...mine);
    return hostOf;
  }
}

/** What the placed asks add to each chosen host. */
export function arriving(hostOf: readonly string[], asks: readonly Labelled[]): Map<string, Resources> {
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
