import { scanStart, selectHost } from './candidates.js';
import { type EvalContext, FILTERS, firstFailure } from './filters.js';
import { countExclusions, emptyMetrics, nonZero } from './place.js';
import { prepareRequest } from './request.js';
import { scoreBreakdown, weightedScore } from './scorers.js';
import type { Snapshot } from './snapshot.js';
import type { ExplainedHost, Explanation, PlacementRequest } from './types.js';
import { workingState } from './working-state.js';

/**
 * Why each host would or would not take the request's first device: every host is run through
 * every filter and, if feasible, every scorer. `candidate` marks the hosts place() actually scored,
 * so a feasible host with a higher score than the chosen one is explained by sampling, not hidden.
 */
export function explain(snapshot: Snapshot, request: PlacementRequest): Explanation {
  const prepared = prepareRequest(request);
  const ctx: EvalContext = {
    snapshot,
    request: prepared,
    work: workingState(snapshot, prepared.tenantId),
  };
  const scored: number[] = [];
  const { host: chosen } = selectHost(ctx, scanStart(prepared, snapshot.size), emptyMetrics(), scored);
  const candidates = new Set(scored);
  const hosts: ExplainedHost[] = [];
  for (let i = 0; i < snapshot.size; i++) {
    const base = { hostId: snapshot.ids[i]!, name: snapshot.names[i]!, candidate: candidates.has(i) };
    const failed = firstFailure(ctx, i);
    if (failed >= 0) {
      const filter = FILTERS[failed]!;
      hosts.push({ ...base, feasible: false, failedFilter: filter.name, reason: filter.reason(ctx, i) });
    } else {
      hosts.push({ ...base, feasible: true, scores: scoreBreakdown(ctx, i), score: weightedScore(ctx, i) });
    }
  }
  return {
    chosenHostId: chosen < 0 ? null : snapshot.ids[chosen]!,
    hosts,
    weights: prepared.weights,
    reasons: nonZero(countExclusions(ctx)),
  };
}
