import { InvalidArgumentError } from './errors.js';
import { prepareRequest } from './request.js';
import { BLOCK_SIZE, copyColumns, refreshBlock, type Snapshot, writeHost } from './snapshot.js';
import type { Assignment, HostInput, PlacementRequest, Resources } from './types.js';

/**
 * A new snapshot with the given assignments allocated, sharing everything static with the old one.
 * For a caller that wants the old snapshot left untouched (decisions taken against it stay
 * reproducible, as in tests that place in sequence). It copies the allocation columns, so it costs
 * O(hosts); a long-lived owner changes its snapshot in place with the functions below instead.
 */
export function withAssignments(
  snapshot: Snapshot,
  request: PlacementRequest,
  assignments: readonly Assignment[],
): Snapshot {
  const r = prepareRequest({ ...request, count: Math.max(1, Math.min(request.count, assignments.length)) });
  const allocated = copyColumns(snapshot.allocated);
  const tenantHosts = new Map(snapshot.tenants.get(r.tenantId) ?? []);
  const touchedBlocks = new Set<number>();
  for (const [k, a] of assignments.entries()) {
    const host = snapshot.indexById.get(a.hostId);
    if (host === undefined)
      throw new InvalidArgumentError(
        `assignments[${k}].hostId`,
        a.hostId,
        'must name a host of the snapshot',
      );
    allocated.cpu[host]! += r.cpu;
    allocated.memory[host]! += r.memory;
    allocated.storage[host]! += r.storage;
    allocated.slots[host]! += 1;
    tenantHosts.set(host, (tenantHosts.get(host) ?? 0) + 1);
    touchedBlocks.add(Math.floor(snapshot.position[host]! / BLOCK_SIZE));
  }
  const tenants = new Map(snapshot.tenants);
  tenants.set(r.tenantId, tenantHosts);
  const next: Snapshot = {
    ...snapshot,
    allocated,
    tenants,
    blockFree: copyColumns(snapshot.blockFree),
    blockLabels: snapshot.blockLabels.slice(),
  };
  for (const b of touchedBlocks) refreshBlock(next, b);
  return next;
}

// In-place changes, for the owner of a long-lived snapshot (the control plane's fleet view). Each
// costs O(1) plus one block of the capacity index, and must not run while place() or explain() is
// reading the snapshot (they are synchronous, so between two calls is always safe).

/**
 * Replaces the facts of host `input.id` (state, capacity, overcommit, allocation, labels, images,
 * name, arch) in place. Its tenant counts are left as they are. Throws InvalidArgumentError, and
 * changes nothing, for a host the snapshot does not hold or a malformed input.
 */
export function setHost(snapshot: Snapshot, input: HostInput): void {
  const index = snapshot.indexById.get(input.id);
  if (index === undefined)
    throw new InvalidArgumentError('host.id', input.id, 'must name a host of the snapshot');
  writeHost(snapshot, index, input);
  refreshBlock(snapshot, Math.floor(snapshot.position[index]! / BLOCK_SIZE));
}

/** Adds `delta` (negative amounts take back) to host `index`'s allocation, in place. */
export function addAllocation(snapshot: Snapshot, index: number, delta: Resources): void {
  const a = snapshot.allocated;
  a.cpu[index] = a.cpu[index]! + delta.vcpuMillicores;
  a.memory[index] = a.memory[index]! + delta.memoryMib;
  a.storage[index] = a.storage[index]! + delta.storageGib;
  a.slots[index] = a.slots[index]! + delta.devices;
  refreshBlock(snapshot, Math.floor(snapshot.position[index]! / BLOCK_SIZE));
}

/**
 * The tenant's devices per host index, as place() reads them for tenant spread; the owner writes
 * into the map it returns (created empty when the snapshot has none for the tenant).
 */
export function tenantCounts(snapshot: Snapshot, tenantId: string): Map<number, number> {
  const tenants = snapshot.tenants as Map<string, Map<number, number>>;
  let counts = tenants.get(tenantId);
  if (!counts) {
    counts = new Map();
    tenants.set(tenantId, counts);
  }
  return counts;
}
