import type { PreparedRequest } from './request.js';
import type { Snapshot } from './snapshot.js';
import type { FilterCounts, FilterName } from './types.js';
import type { WorkingState } from './working-state.js';

export interface EvalContext {
  readonly snapshot: Snapshot;
  readonly request: PreparedRequest;
  readonly work: WorkingState;
}

/**
 * One feasibility check. `test` runs on the hot path and allocates nothing; `reason` builds the
 * human sentence only when someone asks why (a failure or explain).
 */
export interface Filter {
  readonly name: FilterName;
  test(ctx: EvalContext, host: number): boolean;
  reason(ctx: EvalContext, host: number): string;
}

const hostReady: Filter = {
  name: 'host-ready',
  test: (ctx, i) => ctx.snapshot.ready[i] === 1,
  reason: (ctx, i) => `host is ${ctx.snapshot.state[i]}, needs ready`,
};

const architecture: Filter = {
  name: 'architecture',
  test: (ctx, i) => (ctx.snapshot.archBit[i]! & ctx.request.archMask) !== 0,
  reason: (ctx, i) =>
    `host arch ${ctx.snapshot.arch[i]} not among image ${ctx.request.imageId}'s [${ctx.request.arch.join(', ')}]`,
};

const imageCompatibility: Filter = {
  name: 'image-compatibility',
  test: (ctx, i) => {
    const images = ctx.snapshot.images[i];
    if (images !== undefined && !images.has(ctx.request.imageId)) return false;
    return hasAll(ctx.snapshot.labels[i]!, ctx.request.imageLabels);
  },
  reason: (ctx, i) => {
    const images = ctx.snapshot.images[i];
    if (images !== undefined && !images.has(ctx.request.imageId)) {
      return `host does not offer image ${ctx.request.imageId} (offers ${list([...images])})`;
    }
    const missing = firstMissing(ctx.snapshot.labels[i]!, ctx.request.imageLabels);
    return `image ${ctx.request.imageId} requires label ${missing}`;
  },
};

const labelSelector: Filter = {
  name: 'label-selector',
  test: (ctx, i) => hasAll(ctx.snapshot.labels[i]!, ctx.request.selector),
  reason: (ctx, i) => `node selector wants ${firstMissing(ctx.snapshot.labels[i]!, ctx.request.selector)}`,
};

const vcpu: Filter = {
  name: 'vcpu',
  test: (ctx, i) => ctx.request.cpu <= ctx.snapshot.capacity.cpu[i]! - ctx.work.allocated.cpu[i]!,
  reason: (ctx, i) => {
    const s = ctx.snapshot;
    const cap = s.capacity.cpu[i]!;
    const used = ctx.work.allocated.cpu[i]!;
    return (
      `vcpu: asks ${ctx.request.cpu}m, free ${cap - used}m ` +
      `(${cap / s.overcommitCpu[i]!}m x overcommit ${s.overcommitCpu[i]} = ${cap}m, allocated ${used}m)`
    );
  },
};

const memory: Filter = {
  name: 'memory',
  test: (ctx, i) => ctx.request.memory <= ctx.snapshot.capacity.memory[i]! - ctx.work.allocated.memory[i]!,
  reason: (ctx, i) => {
    const s = ctx.snapshot;
    const cap = s.capacity.memory[i]!;
    const used = ctx.work.allocated.memory[i]!;
    return (
      `memory: asks ${ctx.request.memory} MiB, free ${cap - used} MiB ` +
      `(${cap / s.overcommitMemory[i]!} MiB x overcommit ${s.overcommitMemory[i]} = ${cap} MiB, allocated ${used} MiB)`
    );
  },
};

const storage: Filter = {
  name: 'storage',
  test: (ctx, i) => ctx.request.storage <= ctx.snapshot.capacity.storage[i]! - ctx.work.allocated.storage[i]!,
  reason: (ctx, i) => {
    const cap = ctx.snapshot.capacity.storage[i]!;
    const used = ctx.work.allocated.storage[i]!;
    return `storage: asks ${ctx.request.storage} GiB, free ${cap - used} GiB (capacity ${cap} GiB, allocated ${used} GiB)`;
  },
};

const slots: Filter = {
  name: 'slots',
  test: (ctx, i) => ctx.work.allocated.slots[i]! + 1 <= ctx.snapshot.capacity.slots[i]!,
  reason: (ctx, i) =>
    `slots: ${ctx.work.allocated.slots[i]} of ${ctx.snapshot.capacity.slots[i]} device slots used`,
};

/** In evaluation order: cheap static checks first, then resources; a host's reason is the first failure. */
export const FILTERS: readonly Filter[] = [
  hostReady,
  architecture,
  imageCompatibility,
  labelSelector,
  vcpu,
  memory,
  storage,
  slots,
];

/** Index in FILTERS of the first filter the host fails, or -1 if it is feasible. */
export function firstFailure(ctx: EvalContext, host: number): number {
  for (let f = 0; f < FILTERS.length; f++) {
    if (!FILTERS[f]!.test(ctx, host)) return f;
  }
  return -1;
}

export function emptyCounts(): FilterCounts {
  return {
    'host-ready': 0,
    architecture: 0,
    'image-compatibility': 0,
    'label-selector': 0,
    vcpu: 0,
    memory: 0,
    storage: 0,
    slots: 0,
  };
}

function hasAll(
  labels: ReadonlyMap<string, string>,
  wanted: readonly (readonly [string, string])[],
): boolean {
  for (let k = 0; k < wanted.length; k++) {
    const pair = wanted[k]!;
    if (labels.get(pair[0]) !== pair[1]) return false;
  }
  return true;
}

function firstMissing(
  labels: ReadonlyMap<string, string>,
  wanted: readonly (readonly [string, string])[],
): string {
  for (const [key, value] of wanted) {
    const has = labels.get(key);
    if (has !== value) return `${key}=${value}, host has ${key}=${has ?? '<unset>'}`;
  }
  return '<none>';
}

function list(items: string[]): string {
  const shown = items.sort().slice(0, 5).join(', ');
  return items.length > 5 ? `${shown}, … ${items.length - 5} more` : shown || 'none';
}
