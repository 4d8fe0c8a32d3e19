import { scanStart, selectHost } from './candidates.js';
import { type EvalContext, emptyCounts, FILTERS, firstFailure } from './filters.js';
import { prepareRequest } from './request.js';
import type { Snapshot } from './snapshot.js';
import type { Assignment, FilterCounts, Placement, PlacementMetrics, PlacementRequest } from './types.js';
import { commit, restore, workingState } from './working-state.js';

/**
 * Places `request.count` devices, one after another, against a working copy of the snapshot's
 * allocations: each placed device takes its resources, slot and tenant count before the next one
 * is placed. All or nothing: if one device fits nowhere, no assignment is returned, only why.
 *
 * Pure: leaves the snapshot as it found it (a batch's devices are written into its allocation
 * columns as they are placed and the old values put back before returning) and uses no clock or
 * randomness, so the same inputs give the same placement on every replica. Throws
 * InvalidArgumentError on a malformed request.
 */
export function place(snapshot: Snapshot, request: PlacementRequest): Placement {
  const prepared = prepareRequest(request);
  const ctx: EvalContext = { snapshot, request: prepared, work: workingState(snapshot, prepared.tenantId) };
  try {
    return placeAll(ctx);
  } finally {
    restore(ctx.work);
  }
}

function placeAll(ctx: EvalContext): Placement {
  const { snapshot, request: prepared } = ctx;
  const metrics = emptyMetrics();
  const assignments: Assignment[] = [];
  let start = scanStart(prepared, snapshot.size);
  for (let index = 0; index < prepared.count; index++) {
    const { host, next } = selectHost(ctx, start, metrics);
    if (host < 0) {
      const reasons = countExclusions(ctx);
      return {
        ok: false,
        failedIndex: index,
        reasons: nonZero(reasons),
        message: failureMessage(index, prepared.count, snapshot.size, reasons),
        metrics,
      };
    }
    assignments.push({ index, hostId: snapshot.ids[host]! });
    if (index + 1 < prepared.count) commit(ctx.work, host, prepared);
    if (prepared.strategy === 'spread') start = next;
  }
  return { ok: true, assignments, metrics };
}

export function emptyMetrics(): PlacementMetrics {
  return { hostsEvaluated: 0, hostsSkipped: 0, filtered: emptyCounts(), candidatesScored: 0 };
}

/** Runs every host through the filters (no sampling, no index), counting the first failure of each. */
export function countExclusions(ctx: EvalContext): FilterCounts {
  const counts = emptyCounts();
  for (let host = 0; host < ctx.snapshot.size; host++) {
    const failed = firstFailure(ctx, host);
    if (failed >= 0) counts[FILTERS[failed]!.name]++;
  }
  return counts;
}

export function nonZero(counts: FilterCounts): Partial<FilterCounts> {
  const out: Partial<FilterCounts> = {};
  for (const f of FILTERS) if (counts[f.name] > 0) out[f.name] = counts[f.name];
  return out;
}

/** Nomad-style: "device 5 of 5 fits no host: 4 hosts evaluated; 1 excluded by host-ready, 3 by vcpu". */
function failureMessage(index: number, count: number, hosts: number, counts: FilterCounts): string {
  const head = `device ${index + 1} of ${count} fits no host`;
  if (hosts === 0) return `${head}: the snapshot has no hosts`;
  const parts = FILTERS.filter((f) => counts[f.name] > 0).map((f, k) =>
    k === 0 ? `${counts[f.name]} excluded by ${f.name}` : `${counts[f.name]} by ${f.name}`,
  );
  return `${head}: ${hosts} hosts evaluated; ${parts.join(', ')}`;
}
