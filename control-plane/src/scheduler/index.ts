export { InvalidArgumentError } from './errors.js';
export { explain } from './explain.js';
export { FILTERS, type Filter } from './filters.js';
export { place } from './place.js';
export { DEFAULT_CANDIDATE_LIMIT, MAX_BATCH } from './request.js';
export { SCORERS, type Scorer } from './scorers.js';
export { buildSnapshot, checkHost, type Snapshot, type SnapshotOptions } from './snapshot.js';
export { addAllocation, setHost, tenantCounts, withAssignments } from './snapshot-update.js';
export { ReadyVariant } from './snapshot-variant.js';
export {
  ARCHES,
  type Arch,
  type Assignment,
  addResources,
  type ExplainedHost,
  type Explanation,
  type FilterCounts,
  type FilterName,
  HOST_STATES,
  type HostInput,
  type HostState,
  type ImageRequirements,
  NO_RESOURCES,
  type Overcommit,
  type Placement,
  type PlacementFailure,
  type PlacementMetrics,
  type PlacementRequest,
  type PlacementSuccess,
  type Resources,
  type ScoreBreakdown,
  type ScorerName,
  type ScorerWeights,
  type Strategy,
} from './types.js';
