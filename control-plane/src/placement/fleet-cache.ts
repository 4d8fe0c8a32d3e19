import type { Kysely } from 'kysely';
import { buildSnapshot, type HostInput, type ResourceAsk, type Snapshot } from '../scheduler/index.js';
import type { Database } from '../store/schema.js';
import { type HostRow, loadHostInputs, toHostInput, withAllocation } from './host-input.js';

/** The fleet as the scheduler reads it: host inputs and their snapshot, built once on first use. */
export interface FleetView {
  readonly inputs: readonly HostInput[];
  snapshot(): Snapshot;
}

export function fleetView(inputs: readonly HostInput[]): FleetView {
  let snapshot: Snapshot | undefined;
  return {
    inputs,
    snapshot: () => {
      snapshot ??= buildSnapshot(inputs);
      return snapshot;
    },
  };
}

export interface Reservation {
  release(): void;
}

interface Held {
  cpu: number;
  memory: number;
  storage: number;
  devices: number;
}

/**
 * A replica's recent read of the fleet, so a create does not read every host row, plus the
 * capacity its in-flight plans have claimed. Staleness is safe: the plan applier re-checks the
 * chosen hosts against their locked rows, and a plan that no longer fits (or a cached fleet where
 * nothing fits) is placed again on a fresh read, which then refreshes this cache.
 *
 * Reservations keep concurrent creates of one replica from all choosing the same hosts (bin-pack
 * is deterministic): a plan reserves its hosts' capacity the moment it is made, so the next plan,
 * made while the first is still committing, sees it taken and goes elsewhere instead of queueing on
 * the same row locks only to be refused. Committed rows are written back exactly; other replicas'
 * placements show up on the next reload (at most maxAgeMs). Reload with view() outside the
 * create's transaction: a transaction waiting for a pooled connection could exhaust the pool.
 */
export class FleetCache {
  #base = new Map<string, HostInput>();
  #reserved = new Map<string, Held>();
  #view: FleetView | undefined;
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    /** How old a read may be before the next create reloads it. */
    private readonly maxAgeMs = 1000,
  ) {}

  /** Reloads the fleet if the last read is older than maxAgeMs. */
  async refresh(): Promise<void> {
    if (performance.now() - this.#loadedAt < this.maxAgeMs) return;
    this.#loading ??= loadHostInputs(this.db)
      .then((inputs) => this.replace(inputs))
      .finally(() => {
        this.#loading = undefined;
      });
    await this.#loading;
  }

  /** The cached fleet with reservations counted as allocated; undefined before the first read. */
  peek(): FleetView | undefined {
    if (this.#loadedAt === Number.NEGATIVE_INFINITY) return undefined;
    this.#view ??= fleetView([...this.#base.values()].map((h) => this.#withReserved(h)));
    return this.#view;
  }

  /** A fresh full read (the applier's retry rounds make one inside their transaction). */
  replace(inputs: readonly HostInput[]): void {
    this.#base = new Map(inputs.map((h) => [h.id, h]));
    this.#loadedAt = performance.now();
    this.#view = undefined;
  }

  /** Host rows as they now are (just locked or committed): replaces those hosts. */
  patch(rows: readonly HostRow[]): void {
    for (const row of rows) {
      const input = toHostInput(row);
      if (input && this.#base.has(row.id)) this.#base.set(row.id, input);
    }
    if (rows.length > 0) this.#view = undefined;
  }

  /** Claims what a plan puts on each host until released (after commit or failure). */
  reserve(hostOf: readonly string[], asks: readonly ResourceAsk[]): Reservation {
    const claimed = new Map<string, Held>();
    hostOf.forEach((hostId, i) => {
      const ask = asks[i];
      if (!ask) return;
      const c = claimed.get(hostId) ?? { cpu: 0, memory: 0, storage: 0, devices: 0 };
      c.cpu += ask.vcpuMillicores;
      c.memory += ask.memoryMib;
      c.storage += ask.storageGib;
      c.devices += 1;
      claimed.set(hostId, c);
    });
    this.#adjust(claimed, 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#adjust(claimed, -1);
      },
    };
  }

  #adjust(claimed: ReadonlyMap<string, Held>, sign: 1 | -1): void {
    for (const [hostId, c] of claimed) {
      const r = this.#reserved.get(hostId) ?? { cpu: 0, memory: 0, storage: 0, devices: 0 };
      r.cpu += sign * c.cpu;
      r.memory += sign * c.memory;
      r.storage += sign * c.storage;
      r.devices += sign * c.devices;
      if (r.devices <= 0) this.#reserved.delete(hostId);
      else this.#reserved.set(hostId, r);
    }
    if (claimed.size > 0) this.#view = undefined;
  }

  #withReserved(h: HostInput): HostInput {
    const r = this.#reserved.get(h.id);
    if (!r) return h;
    return withAllocation(h, {
      vcpuMillicores: r.cpu,
      memoryMib: r.memory,
      storageGib: r.storage,
      devices: r.devices,
    });
  }
}
