import type { PreparedRequest } from './request.js';
import type { ResourceColumns, Snapshot } from './snapshot.js';

/**
 * Allocations as they stand while one request is being placed: the snapshot's, plus the devices
 * of this batch placed so far. The batch writes its devices straight into the snapshot's columns
 * and restore() puts the values it found back before place() returns, so a batch costs O(devices),
 * not a copy of the fleet's columns, and no caller ever sees the intermediate values (place() is
 * synchronous). The capacity index is not updated: its maxima stay upper bounds, so skipping stays
 * safe.
 */
export interface WorkingState {
  readonly allocated: ResourceColumns;
  readonly tenantBase: ReadonlyMap<number, number> | undefined;
  /** Devices of this request's tenant added by this batch, per host index. */
  readonly tenantAdded: Map<number, number>;
  /** Per host the batch wrote to: its index and the four allocation values it had before. */
  readonly saved: number[];
}

export function workingState(snapshot: Snapshot, tenantId: string): WorkingState {
  return {
    allocated: snapshot.allocated,
    tenantBase: snapshot.tenants.get(tenantId),
    tenantAdded: new Map(),
    saved: [],
  };
}

export function commit(work: WorkingState, host: number, request: PreparedRequest): void {
  const a = work.allocated;
  const before = work.tenantAdded.get(host);
  if (before === undefined)
    work.saved.push(host, a.cpu[host]!, a.memory[host]!, a.storage[host]!, a.slots[host]!);
  a.cpu[host] = a.cpu[host]! + request.cpu;
  a.memory[host] = a.memory[host]! + request.memory;
  a.storage[host] = a.storage[host]! + request.storage;
  a.slots[host] = a.slots[host]! + 1;
  work.tenantAdded.set(host, (before ?? 0) + 1);
}

/** Puts back the allocation values the batch found (exactly: saved, not subtracted). */
export function restore(work: WorkingState): void {
  const a = work.allocated;
  const s = work.saved;
  for (let k = 0; k < s.length; k += 5) {
    const host = s[k]!;
    a.cpu[host] = s[k + 1]!;
    a.memory[host] = s[k + 2]!;
    a.storage[host] = s[k + 3]!;
    a.slots[host] = s[k + 4]!;
  }
  s.length = 0;
}

export function tenantDevices(work: WorkingState, host: number): number {
  return (work.tenantBase?.get(host) ?? 0) + (work.tenantAdded.get(host) ?? 0);
}
