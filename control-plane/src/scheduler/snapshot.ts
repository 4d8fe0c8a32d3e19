import { InvalidArgumentError } from './errors.js';
import { ARCHES, type Arch, HOST_STATES, type HostInput, type HostState, NO_RESOURCES } from './types.js';

/**
 * A column-oriented view of the fleet. Hosts are sorted by id (index = position in that order),
 * numbers sit in typed arrays so the filters touch no objects on the hot path, and the cpu/memory
 * capacities already include overcommit. place() and explain() leave a snapshot as they found it;
 * between calls its owner may change hosts in place (snapshot-update.ts), so a snapshot kept for a
 * long time follows the fleet at the cost of the hosts that changed, not of the fleet.
 */
export interface Snapshot {
  readonly size: number;
  readonly ids: readonly string[];
  readonly names: readonly string[];
  readonly indexById: ReadonlyMap<string, number>;
  readonly arch: readonly Arch[];
  /** Bit (1 << ARCHES.indexOf(arch)) per host, so the arch filter is one AND. */
  readonly archBit: Uint8Array;
  readonly state: readonly HostState[];
  /** 1 where state is 'ready'. */
  readonly ready: Uint8Array;
  readonly labels: readonly ReadonlyMap<string, string>[];
  /** undefined: the host runs any image whose requirements it meets. */
  readonly images: readonly (ReadonlySet<string> | undefined)[];
  readonly overcommitCpu: Float64Array;
  readonly overcommitMemory: Float64Array;
  /** Effective capacity: physical * overcommit for cpu and memory, physical for storage and slots. */
  readonly capacity: ResourceColumns;
  readonly allocated: ResourceColumns;
  /** tenant id -> host index -> devices of that tenant on the host. */
  readonly tenants: ReadonlyMap<string, ReadonlyMap<number, number>>;
  /** Deterministic shuffled visit order (host indexes); see candidates.ts for why. */
  readonly order: Int32Array;
  /** Inverse of `order`: the visit position of each host index. */
  readonly position: Int32Array;
  /**
   * The capacity index. Per block of BLOCK_SIZE positions of `order` and per architecture (entry
   * `block * ARCHES.length + arch`): the largest free amount among the block's ready hosts of that
   * arch. Split by arch so a fleet's amd64 minority does not keep full arm64 blocks looking open.
   */
  readonly blockFree: ResourceColumns;
  /** Per host: one bit per label pair it carries (labelBit), so a block's labels are one OR. */
  readonly labelBits: Uint32Array;
  /**
   * Beside blockFree, per block and arch: the OR of labelBits over the block's ready hosts of that
   * arch with a free device slot. A block lacking a bit the request's labels need holds no host
   * with room that carries them, so a selective node selector skips full or unlabelled blocks.
   */
  readonly blockLabels: Uint32Array;
}

/** The bit of one label pair (key=value): a 32-bit hash folded to 0..31. */
export function labelBit(key: string, value: string): number {
  let h = 0x811c9dc5;
  const text = `${key}=${value}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return 1 << ((h >>> 0) % 32);
}

/** The OR of labelBit over the pairs. */
export function labelMask(labels: Iterable<readonly [string, string]>): number {
  let mask = 0;
  for (const [key, value] of labels) mask |= labelBit(key, value);
  return mask;
}

/** cpu in millicores, memory in MiB, storage in GiB, slots in devices. */
export interface ResourceColumns {
  readonly cpu: Float64Array;
  readonly memory: Float64Array;
  readonly storage: Float64Array;
  readonly slots: Float64Array;
}

export const BLOCK_SIZE = 64;
const BLOCK_SHIFT = 6;

export interface SnapshotOptions {
  /** Seeds the visit order; the same seed and hosts give the same order. */
  readonly seed?: number;
}

const DEFAULT_SEED = 0x5eed;

export function buildSnapshot(hosts: Iterable<HostInput>, options: SnapshotOptions = {}): Snapshot {
  const sorted = [...hosts].sort((a, b) => compareIds(a.id, b.id));
  const n = sorted.length;
  const indexById = new Map<string, number>();
  const tenants = new Map<string, Map<number, number>>();
  const order = shuffledOrder(n, options.seed ?? DEFAULT_SEED);
  const position = new Int32Array(n);
  for (let p = 0; p < n; p++) position[order[p]!] = p;
  const snapshot: Snapshot = {
    size: n,
    ids: new Array<string>(n),
    names: new Array<string>(n),
    indexById,
    arch: new Array<Arch>(n),
    archBit: new Uint8Array(n),
    state: new Array<HostState>(n),
    ready: new Uint8Array(n),
    labels: new Array<ReadonlyMap<string, string>>(n),
    images: new Array<ReadonlySet<string> | undefined>(n),
    overcommitCpu: new Float64Array(n),
    overcommitMemory: new Float64Array(n),
    capacity: columns(n),
    allocated: columns(n),
    tenants,
    order,
    position,
    blockFree: columns(Math.ceil(n / BLOCK_SIZE) * ARCHES.length),
    labelBits: new Uint32Array(n),
    blockLabels: new Uint32Array(Math.ceil(n / BLOCK_SIZE) * ARCHES.length),
  };
  for (let i = 0; i < n; i++) {
    const h = sorted[i]!;
    if (typeof h.id !== 'string' || h.id === '')
      throw new InvalidArgumentError(`hosts[${h.id}].id`, h.id, 'must be a non-empty string');
    if (indexById.has(h.id)) throw new InvalidArgumentError(`hosts[${h.id}].id`, h.id, 'must be unique');
    indexById.set(h.id, i);
    writeHost(snapshot, i, h);
    for (const [tenant, count] of Object.entries(h.tenantDevices ?? {})) {
      if (nonNegative(`hosts[${h.id}].tenantDevices.${tenant}`, count) === 0) continue;
      const perHost = tenants.get(tenant) ?? new Map<number, number>();
      tenants.set(tenant, perHost);
      perHost.set(i, count);
    }
  }
  for (let b = 0; b * BLOCK_SIZE < n; b++) refreshBlock(snapshot, b);
  return snapshot;
}

/** The snapshot's per-host columns as their owner writes them (snapshot-update.ts). */
interface Writable {
  ids: string[];
  names: string[];
  arch: Arch[];
  state: HostState[];
  labels: ReadonlyMap<string, string>[];
  images: (ReadonlySet<string> | undefined)[];
}

/**
 * Throws InvalidArgumentError, naming the field, for a host no snapshot can hold (an unknown arch
 * or state, a negative or non-finite amount, an overcommit ratio not above 0).
 */
export function checkHost(h: HostInput): void {
  checked(h);
}

/** The host's numbers as the columns hold them, validated. */
function checked(h: HostInput) {
  const at = `hosts[${h.id}]`;
  const archIndex = ARCHES.indexOf(h.arch);
  if (archIndex < 0)
    throw new InvalidArgumentError(`${at}.arch`, h.arch, `must be one of ${ARCHES.join(', ')}`);
  if (!HOST_STATES.includes(h.state)) {
    throw new InvalidArgumentError(`${at}.state`, h.state, `must be one of ${HOST_STATES.join(', ')}`);
  }
  const oc = h.overcommit ?? { cpu: 1, memory: 1 };
  const c = h.capacity;
  const a = h.allocated ?? NO_RESOURCES;
  return {
    archIndex,
    overcommitCpu: positive(`${at}.overcommit.cpu`, oc.cpu),
    overcommitMemory: positive(`${at}.overcommit.memory`, oc.memory),
    capacity: [
      nonNegative(`${at}.capacity.vcpuMillicores`, c.vcpuMillicores) * oc.cpu,
      nonNegative(`${at}.capacity.memoryMib`, c.memoryMib) * oc.memory,
      nonNegative(`${at}.capacity.storageGib`, c.storageGib),
      nonNegative(`${at}.capacity.devices`, c.devices),
    ],
    allocated: [
      nonNegative(`${at}.allocated.vcpuMillicores`, a.vcpuMillicores),
      nonNegative(`${at}.allocated.memoryMib`, a.memoryMib),
      nonNegative(`${at}.allocated.storageGib`, a.storageGib),
      nonNegative(`${at}.allocated.devices`, a.devices),
    ],
  } as const;
}

/**
 * Writes every column of host index `i` from `h` (validated first, so a refused host leaves its old
 * columns whole; the id must already be at `i`), but not its tenant counts. The caller refreshes
 * the host's block of the capacity index.
 */
export function writeHost(snapshot: Snapshot, i: number, h: HostInput): void {
  const v = checked(h);
  const s = snapshot as Snapshot & Writable;
  s.ids[i] = h.id;
  s.names[i] = h.name;
  s.arch[i] = h.arch;
  s.archBit[i] = 1 << v.archIndex;
  s.state[i] = h.state;
  s.ready[i] = h.state === 'ready' ? 1 : 0;
  s.overcommitCpu[i] = v.overcommitCpu;
  s.overcommitMemory[i] = v.overcommitMemory;
  [s.capacity.cpu[i], s.capacity.memory[i], s.capacity.storage[i], s.capacity.slots[i]] = v.capacity;
  [s.allocated.cpu[i], s.allocated.memory[i], s.allocated.storage[i], s.allocated.slots[i]] = v.allocated;
  // A host's labels seldom change while its allocation does all the time: keep the map if equal.
  const labels = h.labels ?? {};
  if (!sameLabels(s.labels[i], labels)) {
    const entries = Object.entries(labels);
    s.labels[i] = new Map(entries);
    s.labelBits[i] = labelMask(entries);
  }
  s.images[i] = h.images === undefined ? undefined : new Set(h.images);
}

function sameLabels(map: ReadonlyMap<string, string> | undefined, labels: Readonly<Record<string, string>>) {
  if (!map) return false;
  let n = 0;
  for (const key in labels) {
    if (map.get(key) !== labels[key]) return false;
    n++;
  }
  return n === map.size;
}

/**
 * Recomputes one block's free maxima and label bits; non-ready hosts count as -Infinity (and no
 * labels) so their blocks skip.
 */
export function refreshBlock(snapshot: Snapshot, block: number): void {
  const { order, capacity: cap, allocated: al, ready, archBit, blockFree, labelBits, blockLabels } = snapshot;
  const end = Math.min(order.length, (block + 1) << BLOCK_SHIFT);
  for (let a = 0; a < ARCHES.length; a++) {
    const bit = 1 << a;
    let cpu = Number.NEGATIVE_INFINITY;
    let memory = cpu;
    let storage = cpu;
    let slots = cpu;
    let labels = 0;
    for (let p = block << BLOCK_SHIFT; p < end; p++) {
      const i = order[p]!;
      if (ready[i] === 0 || archBit[i] !== bit) continue;
      cpu = Math.max(cpu, cap.cpu[i]! - al.cpu[i]!);
      memory = Math.max(memory, cap.memory[i]! - al.memory[i]!);
      storage = Math.max(storage, cap.storage[i]! - al.storage[i]!);
      const free = cap.slots[i]! - al.slots[i]!;
      slots = Math.max(slots, free);
      if (free >= 1) labels |= labelBits[i]!;
    }
    const e = block * ARCHES.length + a;
    blockFree.cpu[e] = cpu;
    blockFree.memory[e] = memory;
    blockFree.storage[e] = storage;
    blockFree.slots[e] = slots;
    blockLabels[e] = labels;
  }
}

export function columns(n: number): ResourceColumns {
  return {
    cpu: new Float64Array(n),
    memory: new Float64Array(n),
    storage: new Float64Array(n),
    slots: new Float64Array(n),
  };
}

export function copyColumns(c: ResourceColumns): ResourceColumns {
  return { cpu: c.cpu.slice(), memory: c.memory.slice(), storage: c.storage.slice(), slots: c.slots.slice() };
}

/** Code-unit order, not locale order, so every replica sorts ids the same way. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Fisher-Yates over 0..n-1 with mulberry32; identity would visit hosts in id order, which tends
 * to follow racks and regions, so scans and bin-pack fill would cluster in one failure domain. */
function shuffledOrder(n: number, seed: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let s = seed >>> 0;
  const random = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}

function nonNegative(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(field, value, 'must be a finite number >= 0');
  }
  return value;
}

function positive(field: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(field, value, 'must be a finite number > 0');
  }
  return value;
}
