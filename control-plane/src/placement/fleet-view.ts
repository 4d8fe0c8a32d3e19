// One replica's picture of the fleet, as the scheduler reads it: the host rows (SCHEDULING_COLUMNS)
// held as a live snapshot where only hosts with an open agent stream are ready, plus a variant of
// it sharing its columns where hosts briefly without one count as ready too (the fallback when
// nothing else fits; its capacity index catches up only when it is read). Rows are applied host by
// host, newest change_seq wins, and each costs O(1) plus one block of the capacity index; only a
// host joining or leaving the schedulable set re-indexes (in memory, O(hosts)). Holds are
// placements taken on the view but not yet written: later plans of the same group see them, and a
// row applied meanwhile keeps them on top of its allocation. No I/O here: fleet-cache.ts feeds it.
import {
  addAllocation,
  addResources,
  buildSnapshot,
  checkHost,
  type HostInput,
  NO_RESOURCES,
  ReadyVariant,
  type Resources,
  type Snapshot,
  setHost,
  tenantCounts,
} from '../scheduler/index.js';
import type { SchedulingRow } from '../store/hosts.js';
import { toHostInput } from './host-input.js';

interface Entry {
  row: SchedulingRow;
  /** undefined: a host the scheduler cannot place on (see schedulable()). */
  input: HostInput | undefined;
  /** What holds on the host add to its row's allocation. */
  held: Resources;
}

/** A placement taken on the view and not yet written (see FleetView.hold). */
export interface Hold {
  readonly view: FleetView;
  readonly hostId: string;
  readonly resources: Resources;
  /** The tenant's counts the hold added one to, when they were loaded. */
  readonly counts: Map<number, number> | undefined;
  readonly index: number;
}

/**
 * The row as the scheduler takes it; undefined for a host it cannot place on: an architecture no
 * image runs on, or numbers no snapshot holds (a negative allocation only a broken ledger has).
 */
function schedulable(row: SchedulingRow): HostInput | undefined {
  const input = toHostInput(row);
  if (!input) return undefined;
  try {
    checkHost(input);
    return input;
  } catch {
    return undefined;
  }
}

export class FleetView {
  readonly #entries = new Map<string, Entry>();
  /** Hosts deleted, with the change_seq of their deletion: an older read of them is not applied. */
  readonly #removed = new Map<string, number>();
  #connected!: Snapshot;
  #all!: ReadyVariant;
  #disconnected = 0;
  /** When each tenant's device counts were read (tenant spread); dropped on re-index. */
  #tenantsReadAt = new Map<string, number>();
  /** Times the snapshots were rebuilt in memory because the schedulable set changed. */
  reindexes = 0;

  constructor(rows: Iterable<SchedulingRow>) {
    for (const row of rows) this.#entries.set(row.id, { row, input: schedulable(row), held: NO_RESOURCES });
    this.#reindex();
    this.reindexes = 0;
  }

  /** Schedulable hosts. */
  get size(): number {
    return this.#connected.size;
  }

  /** The snapshot to place on; see the file comment. Changed in place as rows and holds arrive. */
  snapshot(includeDisconnected = false): Snapshot {
    return includeDisconnected ? this.#all.snapshot : this.#connected;
  }

  /** Whether a host is disconnected now (the fallback snapshot could find room there). */
  get hasDisconnected(): boolean {
    return this.#disconnected > 0;
  }

  /** The change_seq of the host's row as applied; undefined for a host the view does not hold. */
  seqOf(hostId: string): number | undefined {
    return this.#entries.get(hostId)?.row.change_seq;
  }

  /** The host's row as last applied (holds not included). */
  row(hostId: string): SchedulingRow | undefined {
    return this.#entries.get(hostId)?.row;
  }

  /** The host as the scheduler sees it now, holds included (a pinned ask places on it alone). */
  input(hostId: string): HostInput | undefined {
    const entry = this.#entries.get(hostId);
    return entry?.input && this.#withHeld(entry.input, entry.held);
  }

  /**
   * Applies rows as they now are (committed, or written by the transaction placing on the view):
   * each replaces its host's unless the view holds a newer change of it. `settled` are holds whose
   * placements these rows carry (see settle()): they go in the same pass, so each host is written
   * once. Returns how many rows applied.
   */
  apply(rows: Iterable<SchedulingRow>, settled: readonly Hold[] = []): number {
    const fresh: SchedulingRow[] = [];
    for (const row of rows) {
      const entry = this.#entries.get(row.id);
      if (entry && row.change_seq <= entry.row.change_seq) continue;
      if (row.change_seq <= (this.#removed.get(row.id) ?? -1)) continue;
      fresh.push(row);
    }
    for (const hold of settled) {
      if (fresh.some((r) => r.id === hold.hostId)) this.#dropHeld(hold);
      else this.#unhold(hold);
    }
    let reindex = false;
    for (const row of fresh) {
      const entry = this.#entries.get(row.id);
      if (entry && row.change_seq <= entry.row.change_seq) continue;
      this.#removed.delete(row.id);
      const input = schedulable(row);
      if (!entry) {
        this.#entries.set(row.id, { row, input, held: NO_RESOURCES });
        reindex ||= input !== undefined;
        continue;
      }
      const was = entry.input;
      entry.row = row;
      entry.input = input;
      if (!was !== !input) reindex = true;
      if (reindex || !was || !input) continue;
      this.#disconnected += (input.state === 'disconnected' ? 1 : 0) - (was.state === 'disconnected' ? 1 : 0);
      setHost(this.#connected, this.#withHeld(input, entry.held));
      this.#all.follow(this.#connected.indexById.get(row.id) as number);
    }
    if (reindex) this.#reindex();
    return fresh.length;
  }

  /** The host was deleted by the change numbered `seq`. */
  remove(hostId: string, seq: number): void {
    const entry = this.#entries.get(hostId);
    if (entry && entry.row.change_seq > seq) return;
    this.#removed.set(hostId, Math.max(seq, this.#removed.get(hostId) ?? -1));
    if (!entry) return;
    this.#entries.delete(hostId);
    if (entry.input) this.#reindex();
  }

  /**
   * Takes one device of `resources` on the host until the hold is released or settled; the
   * tenant's count there goes up by one if its counts are loaded.
   */
  hold(hostId: string, resources: Resources, tenantId: string): Hold {
    const entry = this.#entries.get(hostId);
    const index = this.#connected.indexById.get(hostId);
    if (!entry?.input || index === undefined) throw new Error(`host ${hostId} is not in the fleet view`);
    const one = { ...resources, devices: 1 };
    entry.held = addResources(entry.held, one);
    addAllocation(this.#connected, index, one);
    this.#all.follow(index);
    const counts = this.#connected.tenants.get(tenantId) as Map<number, number> | undefined;
    counts?.set(index, (counts.get(index) ?? 0) + 1);
    return { view: this, hostId, resources: one, counts, index };
  }

  /** Takes a hold back: the placement was not written (refused, re-placed, rolled back). */
  release(hold: Hold): void {
    this.#unhold(hold);
    const count = hold.counts?.get(hold.index);
    if (hold.counts && count !== undefined) hold.counts.set(hold.index, Math.max(0, count - 1));
  }

  /**
   * The hold's placement was written and the host's row, applied since, carries it: the hold's
   * allocation goes, the tenant's count stays.
   */
  settle(hold: Hold): void {
    this.#unhold(hold);
  }

  /** When the tenant's device counts were last set; undefined when they are not loaded. */
  tenantReadAt(tenantId: string): number | undefined {
    return this.#tenantsReadAt.get(tenantId);
  }

  /** Sets the tenant's devices per host (host id -> count), read at `at` (ms, any clock). */
  setTenantCounts(tenantId: string, counts: ReadonlyMap<string, number>, at: number): void {
    const byIndex = tenantCounts(this.#connected, tenantId);
    byIndex.clear();
    for (const [hostId, n] of counts) {
      const index = this.#connected.indexById.get(hostId);
      if (index !== undefined && n > 0) byIndex.set(index, n);
    }
    this.#tenantsReadAt.set(tenantId, at);
  }

  #unhold(hold: Hold): void {
    const entry = this.#dropHeld(hold);
    const index = this.#connected.indexById.get(hold.hostId);
    if (!entry?.input || index === undefined) return;
    addAllocation(this.#connected, index, addResources(NO_RESOURCES, hold.resources, -1));
    this.#all.follow(index);
  }

  /** Takes the hold off its host's held amount, leaving the columns to the caller. */
  #dropHeld(hold: Hold): Entry | undefined {
    if (hold.view !== this) return undefined;
    const entry = this.#entries.get(hold.hostId);
    if (entry) entry.held = addResources(entry.held, hold.resources, -1);
    return entry;
  }

  #withHeld(input: HostInput, held: Resources): HostInput {
    if (held.devices === 0 && held.vcpuMillicores === 0 && held.memoryMib === 0 && held.storageGib === 0)
      return input;
    return { ...input, allocated: addResources(input.allocated ?? NO_RESOURCES, held) };
  }

  #reindex(): void {
    const current: HostInput[] = [];
    this.#disconnected = 0;
    for (const entry of this.#entries.values()) {
      if (!entry.input) continue;
      current.push(this.#withHeld(entry.input, entry.held));
      if (entry.input.state === 'disconnected') this.#disconnected++;
    }
    this.#connected = buildSnapshot(current);
    this.#all = new ReadyVariant(this.#connected, 'disconnected');
    // Counts are kept by host index: read them again against the new one.
    this.#tenantsReadAt = new Map();
    this.reindexes++;
  }
}
