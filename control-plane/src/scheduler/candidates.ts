import { type EvalContext, FILTERS, firstFailure } from './filters.js';
import type { PreparedRequest } from './request.js';
import { weightedScore } from './scorers.js';
import { BLOCK_SIZE, type ResourceColumns } from './snapshot.js';
import type { PlacementMetrics } from './types.js';
import { ARCHES } from './types.js';

/**
 * How one device finds its host without scoring the whole fleet (Nomad's limit iterator, plus a
 * capacity index):
 *
 * - Hosts are visited in the snapshot's fixed shuffled order. The scan stops once it has found
 *   `candidateLimit` feasible hosts and picks the best-scoring of those (ties: lowest host id).
 *   If fewer exist, it sees every host, so a device fails only when no host can take it.
 * - Bin-pack always starts at position 0. Every decision therefore considers the same leading
 *   feasible hosts and puts the device on the fullest of them; those hosts fill up and drop out
 *   of feasibility, and the scan moves on. The fleet fills in visit order, which is real packing,
 *   not "fullest of a random sample".
 * - Spread starts at a position derived from the request's seed, and a batch continues from where
 *   the previous device stopped, so devices sample disjoint windows and land on the emptiest host
 *   of each (power of d choices).
 * - The order is cut into blocks of BLOCK_SIZE hosts with the largest free cpu, memory, storage
 *   and slots among each block's ready hosts, per arch. A block whose maxima cannot hold the ask
 *   for any arch the image accepts is skipped unseen. Once bin-pack has filled the head of the
 *   order, the scan jumps over it in 1/64th of the steps instead of re-checking every full host.
 *   Each block also keeps the OR of its label bits (one bit per key=value pair, hashed into 32)
 *   over the hosts that still have a free slot, so a selective node selector (gpu=true) skips
 *   blocks whose hosts with room carry none of its labels, instead of walking the hosts of other
 *   label values. Hash collisions only make a block look possible; it is then scanned, never
 *   wrongly skipped. Image offers (HostInput.images) are not indexed.
 */
/** Whether some ready host of an arch the request accepts may fit the ask in block `b`. */
function mayFit(
  blockFree: ResourceColumns,
  blockLabels: Uint32Array,
  b: number,
  request: PreparedRequest,
  arches: number,
): boolean {
  const labels = request.labelMask;
  for (let a = 0; a < arches; a++) {
    if ((request.archMask & (1 << a)) === 0) continue;
    const e = b * arches + a;
    if (
      blockFree.cpu[e]! >= request.cpu &&
      blockFree.memory[e]! >= request.memory &&
      blockFree.storage[e]! >= request.storage &&
      blockFree.slots[e]! >= 1 &&
      (blockLabels[e]! & labels) === labels
    ) {
      return true;
    }
  }
  return false;
}

export interface ScanResult {
  /** Chosen host index, or -1 if no host is feasible. */
  readonly host: number;
  /** Visit position after the last host looked at; the next device of a spread batch starts there. */
  readonly next: number;
}

export function scanStart(request: PreparedRequest, hosts: number): number {
  return request.strategy === 'spread' && hosts > 0 ? request.seedHash % hosts : 0;
}

export function selectHost(
  ctx: EvalContext,
  start: number,
  metrics: PlacementMetrics,
  scored?: number[],
): ScanResult {
  // Imported bindings are read into locals once: under some loaders (tsx's CommonJS interop) each
  // read of an imported name is a getter call, which costs more than the filter it reaches.
  const failureOf = firstFailure;
  const scoreOf = weightedScore;
  const filters = FILTERS;
  const blockSize = BLOCK_SIZE;
  const blockMayFit = mayFit;
  const arches = ARCHES.length;
  const { snapshot, request } = ctx;
  const { order, blockFree, blockLabels } = snapshot;
  const n = snapshot.size;
  const limit = request.candidateLimit;
  let best = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  let found = 0;
  let p = start;
  let remaining = n;
  let atBlockStart = true;
  while (remaining > 0) {
    if (atBlockStart) {
      const b = (p / blockSize) | 0;
      if (!blockMayFit(blockFree, blockLabels, b, request, arches)) {
        const end = Math.min(n, (b + 1) * blockSize);
        const skip = Math.min(end - p, remaining);
        metrics.hostsSkipped += skip;
        remaining -= skip;
        p = end === n ? 0 : end;
        continue;
      }
      atBlockStart = false;
    }
    const host = order[p]!;
    metrics.hostsEvaluated++;
    const failed = failureOf(ctx, host);
    if (failed >= 0) {
      metrics.filtered[filters[failed]!.name]++;
    } else {
      const score = scoreOf(ctx, host);
      metrics.candidatesScored++;
      scored?.push(host);
      if (score > bestScore || (score === bestScore && host < best)) {
        best = host;
        bestScore = score;
      }
      found++;
    }
    remaining--;
    p = p + 1 === n ? 0 : p + 1;
    if (p % blockSize === 0) atBlockStart = true;
    if (found >= limit) break;
  }
  return { host: best, next: p };
}
