// Options of the docker runtime. The agent's config.ts builds one from its validated settings;
// tests build one directly. Defaults are the production choices for Redroid hosts.

/** A host device node passed into the phone, e.g. a numbered binder from the binder_linux module. */
export interface DeviceMapping {
  readonly hostPath: string;
  readonly containerPath: string;
}

/**
 * How the agent reaches a phone's adbd (container port 5555):
 * - `published` (default): published on `adbBindHost` (127.0.0.1) with an engine-chosen host port,
 *   so ADB is reachable from this host only and the endpoint does not depend on bridge routing
 *   (works the same under rootless engines, where bridge IPs are not routable from the host).
 * - `bridge`: the container's own IP on the phone network, port 5555; no host port is used.
 */
export type AdbAccess = 'published' | 'bridge';

export type PullPolicy = 'missing' | 'always' | 'never';

export interface DockerRuntimeConfig {
  /** Only phones labelled with this scope are listed, adopted and reported (one per agent). */
  readonly scope: string;
  /** Prefix of container and volume names; the device id follows. */
  readonly namePrefix: string;
  /**
   * With `tenantNetworks` (default): the prefix of the per-tenant network names
   * (`<network>-<hash of scope and tenant>`); without: the one bridge network every phone joins.
   * Networks are created when a phone needs one; empty tenant networks are removed.
   */
  readonly network: string;
  /** One bridge network per tenant (default), so phones of different tenants share no L2 segment. */
  readonly tenantNetworks: boolean;
  /**
   * Every phone bridge's interface name starts with this (1-6 lower-case letters or digits); the
   * agent's firewall matches phone traffic by it (`<prefix>+`). Default `cph`.
   */
  readonly bridgePrefix: string;
  /** Driver options for the network when the runtime creates it. */
  readonly networkOptions: Readonly<Record<string, string>>;
  readonly adbAccess: AdbAccess;
  readonly adbBindHost: string;
  /**
   * Binder device nodes to pass in. Empty (default) for kernels with binderfs, where Redroid's
   * privileged init mounts its own binder devices; `/dev/binderN -> /dev/binder|hwbinder|vndbinder`
   * for hosts where binder_linux was loaded with numbered devices.
   */
  readonly devices: readonly DeviceMapping[];
  /** Pass `androidboot.use_memfd=1`: needed on kernels >= 5.18, which dropped ashmem. */
  readonly useMemfd: boolean;
  /** `androidboot.redroid_gpu_node` (e.g. /dev/dri/renderD128) for `host` GPU mode; auto-detected when unset. */
  readonly gpuNode?: string;
  /** DNS servers for Android (`androidboot.redroid_net_dns<N>`); Redroid falls back to 8.8.8.8. */
  readonly dns: readonly string[];
  /** Ask the volume driver to cap /data at storageGib (needs a driver or filesystem with quotas). */
  readonly enforceStorageQuota: boolean;
  readonly pullPolicy: PullPolicy;
  /** Extra bind mounts (`host:container[:ro]`), e.g. vendor blobs. */
  readonly binds: readonly string[];
  /** Test seam: run this image instead of the spec's (the create options stay Redroid's). */
  readonly imageOverride?: string;
  /** Test seam: replace the Redroid boot arguments. */
  readonly commandOverride?: readonly string[];
}

export const DEFAULT_DOCKER_RUNTIME_CONFIG: DockerRuntimeConfig = Object.freeze({
  scope: 'default',
  namePrefix: 'cphone-',
  network: 'cphone',
  tenantNetworks: true,
  bridgePrefix: 'cph',
  networkOptions: Object.freeze({}),
  adbAccess: 'published',
  adbBindHost: '127.0.0.1',
  devices: Object.freeze([]),
  useMemfd: true,
  dns: Object.freeze([]),
  enforceStorageQuota: false,
  pullPolicy: 'missing',
  binds: Object.freeze([]),
});

export function dockerRuntimeConfig(overrides: Partial<DockerRuntimeConfig> = {}): DockerRuntimeConfig {
  return Object.freeze({ ...DEFAULT_DOCKER_RUNTIME_CONFIG, ...overrides });
}
