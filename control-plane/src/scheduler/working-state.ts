import type { PreparedRequest } from './request.js';
import { copyColumns, type ResourceColumns, type Snapshot } from './snapshot.js';

/**
 * Allocations as they stand while one request is being placed: the snapshot's, plus the devices
 * of this batch placed so far. A single-device request never commits, so it reads the snapshot's
 * columns directly; a batch copies them once (a memcpy of four typed arrays) and then writes.
 * The capacity index is not updated: its maxima stay upper bounds, so skipping stays safe.
 */
export interface WorkingState {
  readonly allocated: ResourceColumns;
  readonly tenantBase: ReadonlyMap<number, number> | undefined;
  /** Devices of this request's tenant added by this batch, per host index. */
  readonly tenantAdded: Map<number, number>;
}

/** `writable` is false when nothing will be committed (a single device, or explain). */
export function workingState(snapshot: Snapshot, tenantId: string, writable: boolean): WorkingState {
  return {
    allocated: writable ? copyColumns(snapshot.allocated) : snapshot.allocated,
    tenantBase: snapshot.tenants.get(tenantId),
    tenantAdded: new Map(),
  };
}

export function commit(work: WorkingState, host: number, request: PreparedRequest): void {
  const a = work.allocated;
  a.cpu[host] = a.cpu[host]! + request.cpu;
  a.memory[host] = a.memory[host]! + request.memory;
  a.storage[host] = a.storage[host]! + request.storage;
  a.slots[host] = a.slots[host]! + 1;
  work.tenantAdded.set(host, (work.tenantAdded.get(host) ?? 0) + 1);
}

export function tenantDevices(work: WorkingState, host: number): number {
  return (work.tenantBase?.get(host) ?? 0) + (work.tenantAdded.get(host) ?? 0);
}
