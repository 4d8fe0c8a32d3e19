import { InvalidArgumentError } from './errors.js';
import { prepareRequest } from './request.js';
import { BLOCK_SIZE, copyColumns, refreshBlock, type Snapshot } from './snapshot.js';
import type { Assignment, PlacementRequest } from './types.js';

/**
 * A new snapshot with the given assignments allocated, sharing everything static with the old one.
 * For a caller that keeps a snapshot between store reads (and for tests that place in sequence);
 * the old snapshot is left untouched, so decisions already taken against it stay reproducible.
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
  };
  for (const b of touchedBlocks) refreshBlock(next, b);
  return next;
}
