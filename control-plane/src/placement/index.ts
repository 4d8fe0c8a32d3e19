export {
  type AppliedPlacement,
  applyPlacement,
  applyPlan,
  type CommittedPlan,
  type DeviceDraft,
  MAX_PLACEMENT_ATTEMPTS,
  type PlacementBatch,
} from './apply.js';
export { explainPlacement } from './explain.js';
export { FleetCache, type FleetView, fleetView, type Reservation } from './fleet-cache.js';
export {
  HOST_COLUMNS,
  type HostRow,
  hostState,
  loadHostInputs,
  normalizeArch,
  toHostInput,
} from './host-input.js';
export { isRetryableConflict, retryOnConflict } from './retry.js';
