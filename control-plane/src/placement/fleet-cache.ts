import type { Kysely } from 'kysely';
import { buildSnapshot, type HostInput, type Snapshot } from '../scheduler/index.js';
import type { SchedulingRow } from '../store/hosts.js';
import type { Database } from '../store/schema.js';
import { loadHostInputs, toHostInput } from './host-input.js';

/** The fleet as the scheduler reads it: host inputs and their snapshots, built once on first use. */
export interface FleetView {
  readonly inputs: readonly HostInput[];
  /**
   * The snapshot to place on. With `includeDisconnected`, hosts whose agent stream is closed right
   * now count as ready (the fallback when no connected host fits).
   */
  snapshot(includeDisconnected?: boolean): Snapshot;
  /** Whether any host is disconnected (a fallback could find room there). */
  readonly hasDisconnected: boolean;
}

export function fleetView(inputs: readonly HostInput[]): FleetView {
  let connected: Snapshot | undefined;
  let all: Snapshot | undefined;
  const hasDisconnected = inputs.some((h) => h.state === 'disconnected');
  return {
    inputs,
    hasDisconnected,
    snapshot: (includeDisconnected = false) => {
      if (!includeDisconnected || !hasDisconnected) {
        connected ??= buildSnapshot(inputs);
        return connected;
      }
      all ??= buildSnapshot(
        inputs.map((h) => (h.state === 'disconnected' ? { ...h, state: 'ready' as const } : h)),
      );
      return all;
    },
  };
}

/**
 * One replica's recent read of the fleet, so a create does not read every host row. Staleness is
 * safe: the plan applier re-checks the chosen hosts against their locked rows, and a plan that no
 * longer fits (or a cached fleet where nothing fits) is placed again on a fresh read, which then
 * refreshes this cache. The replica's planner applies one group of plans at a time and patches the
 * cache with each one's committed rows, so its own plans never race each other here; other
 * replicas' placements show up on the next reload (at most maxAgeMs). Reload outside the plan's
 * transaction: a transaction waiting for a pooled connection could exhaust the pool.
 */
export class FleetCache {
  #base = new Map<string, HostInput>();
  #view: FleetView | undefined;
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    /** How old a read may be before the next plan reloads it. */
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

  /** The cached fleet; undefined before the first read. */
  peek(): FleetView | undefined {
    if (this.#loadedAt === Number.NEGATIVE_INFINITY) return undefined;
    this.#view ??= fleetView([...this.#base.values()]);
    return this.#view;
  }

  /** A fresh full read (the applier's later rounds make one inside their transaction). */
  replace(inputs: readonly HostInput[]): void {
    this.#base = new Map(inputs.map((h) => [h.id, h]));
    this.#loadedAt = performance.now();
    this.#view = undefined;
  }

  /** Host rows as they now are (locked, or committed by this replica): replaces those hosts. */
  patch(rows: readonly SchedulingRow[]): void {
    for (const row of rows) {
      const input = toHostInput(row);
      if (input && this.#base.has(row.id)) this.#base.set(row.id, input);
    }
    if (rows.length > 0) this.#view = undefined;
  }

  /** Forgets the read: the next plan reloads (e.g. after a transaction that patched it rolled back). */
  invalidate(): void {
    this.#loadedAt = Number.NEGATIVE_INFINITY;
    this.#view = undefined;
  }
}
