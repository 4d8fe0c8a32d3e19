export { type AppliedPlan, type ApplyContext, applyPlan, MAX_PLACEMENT_ATTEMPTS } from './applier.js';
export { explainPlacement } from './explain.js';
export { FleetCache, type FleetView, fleetView } from './fleet-cache.js';
export { hostState, loadHostInputs, normalizeArch, toHostInput } from './host-input.js';
export type { Ask, Move, NewDevice, Plan, Release } from './plan.js';
export { type JobContext, type PlanJob, Planner } from './planner.js';
export { isRetryableConflict } from './retry.js';
