import { InvalidArgumentError } from './errors.js';
import { labelMask } from './snapshot.js';
import { ARCHES, type Arch, type PlacementRequest, type ScoreBreakdown, type Strategy } from './types.js';

export const MAX_BATCH = 100;
/**
 * Feasible hosts scored per device. Ten keeps a decision to a few microseconds on a 10,000-host
 * fleet while choosing among enough hosts that bin-pack still packs and spread still balances
 * (sampling d choices already evens load sharply from d = 2).
 */
export const DEFAULT_CANDIDATE_LIMIT = 10;

/** A validated request, reduced to what the filters and scorers read on the hot path. */
export interface PreparedRequest {
  readonly count: number;
  readonly cpu: number;
  readonly memory: number;
  readonly storage: number;
  readonly imageId: string;
  readonly arch: readonly Arch[];
  /** OR of the arch bits the image accepts; every bit when it names none. */
  readonly archMask: number;
  readonly imageLabels: readonly (readonly [string, string])[];
  readonly selector: readonly (readonly [string, string])[];
  /** labelMask of the image's labels and the selector: the bits a block must hold to be scanned. */
  readonly labelMask: number;
  readonly tenantId: string;
  readonly strategy: Strategy;
  readonly weights: Readonly<ScoreBreakdown>;
  readonly candidateLimit: number;
  /** Where a spread scan starts, as an unsigned 32-bit hash of the seed. */
  readonly seedHash: number;
}

/** Throws InvalidArgumentError naming the first bad field and its value. */
export function prepareRequest(r: PlacementRequest): PreparedRequest {
  if (!Number.isInteger(r.count) || r.count < 1 || r.count > MAX_BATCH) {
    throw new InvalidArgumentError('count', r.count, `must be an integer in 1..${MAX_BATCH}`);
  }
  const res = r.resources;
  const cpu = amount('resources.vcpuMillicores', res?.vcpuMillicores);
  const memory = amount('resources.memoryMib', res?.memoryMib);
  const storage = amount('resources.storageGib', res?.storageGib);
  const imageId = text('image.id', r.image?.id);
  const tenantId = text('tenantId', r.tenantId);
  const arch = r.image.arch ?? [];
  let archMask = arch.length === 0 ? (1 << ARCHES.length) - 1 : 0;
  for (const [i, a] of arch.entries()) {
    const bit = ARCHES.indexOf(a);
    if (bit < 0) throw new InvalidArgumentError(`image.arch[${i}]`, a, `must be one of ${ARCHES.join(', ')}`);
    archMask |= 1 << bit;
  }
  const strategy = r.strategy ?? 'binpack';
  if (strategy !== 'binpack' && strategy !== 'spread') {
    throw new InvalidArgumentError('strategy', strategy, "must be 'binpack' or 'spread'");
  }
  const w = r.weights ?? {};
  const weights: ScoreBreakdown = {
    binpack: weight('weights.binpack', w.binpack, strategy === 'binpack' ? 1 : 0),
    spread: weight('weights.spread', w.spread, strategy === 'spread' ? 1 : 0),
    'tenant-spread': weight('weights.tenantSpread', w.tenantSpread, r.spreadTenant ? 1 : 0),
  };
  const candidateLimit = r.candidateLimit ?? DEFAULT_CANDIDATE_LIMIT;
  if (!Number.isInteger(candidateLimit) || candidateLimit < 1) {
    throw new InvalidArgumentError('candidateLimit', candidateLimit, 'must be an integer >= 1');
  }
  const imageLabels = pairs('image.requiredLabels', r.image.requiredLabels);
  const selector = pairs('nodeSelector', r.nodeSelector);
  return {
    count: r.count,
    cpu,
    memory,
    storage,
    imageId,
    arch,
    archMask,
    imageLabels,
    selector,
    labelMask: labelMask([...imageLabels, ...selector]),
    tenantId,
    strategy,
    weights,
    candidateLimit,
    seedHash: fnv1a(r.seed ?? `${tenantId}/${imageId}`),
  };
}

function amount(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(field, value, 'must be a finite number >= 0');
  }
  return value;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '')
    throw new InvalidArgumentError(field, value, 'must be a non-empty string');
  return value;
}

function weight(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0)
    throw new InvalidArgumentError(field, value, 'must be a finite number >= 0');
  return value;
}

function pairs(field: string, map: Readonly<Record<string, string>> | undefined): [string, string][] {
  const out = Object.entries(map ?? {});
  for (const [k, v] of out) {
    if (typeof v !== 'string') throw new InvalidArgumentError(`${field}.${k}`, v, 'must be a string');
  }
  return out;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
