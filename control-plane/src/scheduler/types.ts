/** Public input and output shapes of the scheduler. Internal layouts live in snapshot.ts. */

export type Arch = 'arm64' | 'amd64';
export const ARCHES: readonly Arch[] = ['arm64', 'amd64'];

/**
 * 'disconnected': heartbeating within its TTL but no agent stream is open right now (an agent or
 * control-plane replica restarting). The host-ready filter passes over it like any host that is not
 * ready; the caller may place again treating such hosts as ready when nothing else fits.
 */
export type HostState = 'ready' | 'disconnected' | 'unreachable' | 'cordoned' | 'draining' | 'offline';
export const HOST_STATES: readonly HostState[] = [
  'ready',
  'disconnected',
  'unreachable',
  'cordoned',
  'draining',
  'offline',
];

export type Strategy = 'binpack' | 'spread';

/**
 * An amount of each schedulable resource: the one resource vector of the control plane. A device
 * asks for its spec and one device slot; a host has a capacity and an allocation of the same shape.
 */
export interface Resources {
  /** CPU in millicores. */
  readonly vcpuMillicores: number;
  /** Memory in MiB. */
  readonly memoryMib: number;
  /** Data-volume disk in GiB. */
  readonly storageGib: number;
  /** Device slots (a device takes one; a host's capacity is how many phones it may run). */
  readonly devices: number;
}

export const NO_RESOURCES: Resources = Object.freeze({
  vcpuMillicores: 0,
  memoryMib: 0,
  storageGib: 0,
  devices: 0,
});

/** a + sign * b, field by field. */
export function addResources(a: Resources, b: Resources, sign: 1 | -1 = 1): Resources {
  return {
    vcpuMillicores: a.vcpuMillicores + sign * b.vcpuMillicores,
    memoryMib: a.memoryMib + sign * b.memoryMib,
    storageGib: a.storageGib + sign * b.storageGib,
    devices: a.devices + sign * b.devices,
  };
}

/** Multipliers on physical cpu and memory; storage is never overcommitted. */
export interface Overcommit {
  readonly cpu: number;
  readonly memory: number;
}

/** One host as the store knows it: one row of `hosts` plus its aggregates. */
export interface HostInput {
  readonly id: string;
  readonly name: string;
  readonly arch: Arch;
  readonly state: HostState;
  readonly labels?: Readonly<Record<string, string>>;
  /** Physical capacity (cpu and memory before overcommit). */
  readonly capacity: Resources;
  /** Defaults to 1 / 1 (no overcommit). */
  readonly overcommit?: Overcommit;
  /** Defaults to nothing allocated. */
  readonly allocated?: Resources;
  /**
   * Image ids this host can run (e.g. images pre-pulled there). Absent means the host runs any
   * image whose own requirements (arch, labels) it meets.
   */
  readonly images?: Iterable<string>;
  /** Devices per tenant on this host, from a `GROUP BY host_id, tenant_id` count. */
  readonly tenantDevices?: Readonly<Record<string, number>>;
}

/** The image's compatibility rule. */
export interface ImageRequirements {
  readonly id: string;
  /** Architectures the image runs on; empty or absent means any. */
  readonly arch?: readonly Arch[];
  /** Labels a host must carry to run the image (e.g. binder=true). */
  readonly requiredLabels?: Readonly<Record<string, string>>;
}

export interface ScorerWeights {
  readonly binpack?: number;
  readonly spread?: number;
  readonly tenantSpread?: number;
}

export interface PlacementRequest {
  /** Devices to place, 1..100, each with the same ask. */
  readonly count: number;
  /** What each device asks for (its devices field is ignored: each takes one slot). */
  readonly resources: Resources;
  readonly image: ImageRequirements;
  readonly tenantId: string;
  /** Label equality constraints, e.g. { region: 'eu-west', gpu: 'true' }. */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /** Default 'binpack'. */
  readonly strategy?: Strategy;
  /** Spread this tenant's phones across hosts (adds the tenant-spread scorer). */
  readonly spreadTenant?: boolean;
  /** Overrides the weights the strategy implies (binpack or spread 1, tenant-spread 1 if asked). */
  readonly weights?: ScorerWeights;
  /** Feasible hosts scored per device before choosing (default 10). See candidates.ts. */
  readonly candidateLimit?: number;
  /**
   * Varies where a spread scan starts, so independent decisions sample different hosts. Pass the
   * request or device id; defaults to tenant and image. Binpack ignores it.
   */
  readonly seed?: string;
}

export type FilterName =
  | 'host-ready'
  | 'architecture'
  | 'image-compatibility'
  | 'label-selector'
  | 'vcpu'
  | 'memory'
  | 'storage'
  | 'slots';

export type ScorerName = 'binpack' | 'spread' | 'tenant-spread';

export type FilterCounts = Record<FilterName, number>;

export interface PlacementMetrics {
  /** Hosts run through the filters (summed over the devices of a batch). */
  hostsEvaluated: number;
  /** Hosts passed over without evaluation because their block of the capacity index cannot fit the ask. */
  hostsSkipped: number;
  /** Evaluated hosts excluded, per filter. */
  filtered: FilterCounts;
  /** Feasible hosts scored. */
  candidatesScored: number;
}

export interface Assignment {
  /** Index of the device within the request, 0-based. */
  readonly index: number;
  readonly hostId: string;
}

export interface PlacementSuccess {
  readonly ok: true;
  readonly assignments: readonly Assignment[];
  readonly metrics: PlacementMetrics;
}

export interface PlacementFailure {
  readonly ok: false;
  /** Index of the first device that found no host. */
  readonly failedIndex: number;
  /** Over every host, for that device: how many each filter excluded (filters that excluded none are absent). */
  readonly reasons: Partial<FilterCounts>;
  readonly message: string;
  readonly metrics: PlacementMetrics;
}

export type Placement = PlacementSuccess | PlacementFailure;

export type ScoreBreakdown = Record<ScorerName, number>;

export interface ExplainedHost {
  readonly hostId: string;
  readonly name: string;
  readonly feasible: boolean;
  /** The first filter that excluded the host, and why. */
  readonly failedFilter?: FilterName;
  readonly reason?: string;
  /** Raw 0..1 score per scorer (feasible hosts only). */
  readonly scores?: ScoreBreakdown;
  /** Weighted sum of `scores`. */
  readonly score?: number;
  /** Whether place() scored this host for the first device (it samples a bounded number). */
  readonly candidate: boolean;
}

export interface Explanation {
  /** The host place() picks for the first device, or null if none fits. */
  readonly chosenHostId: string | null;
  /** Every host of the snapshot, in host id order. */
  readonly hosts: readonly ExplainedHost[];
  readonly weights: Readonly<ScoreBreakdown>;
  readonly reasons: Partial<FilterCounts>;
}
