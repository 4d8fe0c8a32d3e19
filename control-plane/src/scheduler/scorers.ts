import type { EvalContext } from './filters.js';
import type { ScoreBreakdown, ScorerName } from './types.js';
import { tenantDevices } from './working-state.js';

/** One ranking signal in 0..1, higher is better; scorers run only on feasible hosts. */
export interface Scorer {
  readonly name: ScorerName;
  score(ctx: EvalContext, host: number): number;
}

/** Mean of cpu and memory utilisation after placing the device, against effective capacity. */
function utilisationAfter(ctx: EvalContext, i: number): number {
  const { capacity } = ctx.snapshot;
  const a = ctx.work.allocated;
  const cpu = ratio(a.cpu[i]! + ctx.request.cpu, capacity.cpu[i]!);
  const mem = ratio(a.memory[i]! + ctx.request.memory, capacity.memory[i]!);
  return (cpu + mem) / 2;
}

function ratio(used: number, cap: number): number {
  // A zero-capacity host only passes the filters for a zero ask; call it full.
  return cap > 0 ? Math.min(1, used / cap) : 1;
}

const binpack: Scorer = { name: 'binpack', score: utilisationAfter };

const spread: Scorer = { name: 'spread', score: (ctx, i) => 1 - utilisationAfter(ctx, i) };

/** 1 on a host without this tenant's phones, halving-ish as they accumulate: 1/(1+n). */
const tenantSpread: Scorer = {
  name: 'tenant-spread',
  score: (ctx, i) => 1 / (1 + tenantDevices(ctx.work, i)),
};

export const SCORERS: readonly Scorer[] = [binpack, spread, tenantSpread];

/** Weighted sum over scorers with a non-zero weight. */
export function weightedScore(ctx: EvalContext, host: number): number {
  const w = ctx.request.weights;
  let total = 0;
  for (let s = 0; s < SCORERS.length; s++) {
    const scorer = SCORERS[s]!;
    const weight = w[scorer.name];
    if (weight !== 0) total += weight * scorer.score(ctx, host);
  }
  return total;
}

export function scoreBreakdown(ctx: EvalContext, host: number): ScoreBreakdown {
  return {
    binpack: binpack.score(ctx, host),
    spread: spread.score(ctx, host),
    'tenant-spread': tenantSpread.score(ctx, host),
  };
}
