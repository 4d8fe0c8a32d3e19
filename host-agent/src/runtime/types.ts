// Data types of the container runtime boundary. The agent maps its wire types (cphone.agent.v1)
// onto these, so the runtimes never handle protobuf messages; the spellings and the limits they
// must meet are the device-spec contract's, from @cphone/proto.
import type { GpuModeName } from '@cphone/proto';

/** How Android renders: `guest` is software (SwiftShader), `host` uses the host GPU, `auto` probes. */
export type GpuMode = GpuModeName;

export interface ScreenSpec {
  readonly width: number;
  readonly height: number;
  readonly dpi: number;
  readonly fps: number;
}

/** Everything a runtime needs to create one phone. */
export interface DeviceSpec {
  readonly deviceId: string;
  readonly tenantId: string;
  /** Bumped by the control plane on every change of the spec; a container carries the one it was made from. */
  readonly specRevision: number;
  /** Container image reference (for Redroid, e.g. `redroid/redroid:12.0.0_64only-latest`). */
  readonly image: string;
  readonly vcpuMillicores: number;
  readonly memoryMib: number;
  readonly storageGib: number;
  readonly screen: ScreenSpec;
  readonly gpuMode: GpuMode;
  /** Extra Android system properties, each key starting with `ro.` (the contract's rules). */
  readonly properties: Readonly<Record<string, string>>;
  /** Extra labels for the container; the runtime's own `dev.cphone.*` labels always win. */
  readonly labels: Readonly<Record<string, string>>;
}

export type DeviceState = 'created' | 'running' | 'exited' | 'restarting' | 'removing' | 'missing';

export interface AdbEndpoint {
  readonly host: string;
  readonly port: number;
}

/** Where a running container phone sits on the host's network (docker runtime only). */
export interface PhoneNetwork {
  /** The engine's network name (the tenant's network by default). */
  readonly name: string;
  /** The bridge interface on the host. */
  readonly bridge: string;
  /** The phone's IPv4 address on it. */
  readonly address: string;
}

/** What a runtime observes about one phone. */
export interface RuntimeDevice {
  readonly deviceId: string;
  readonly tenantId: string;
  readonly specRevision: number;
  readonly image: string;
  readonly state: DeviceState;
  /** The runtime's own handle (container id for docker, a generated id for sim). */
  readonly runtimeId: string;
  /** Set once the phone has exited at least once. */
  readonly exitCode?: number;
  readonly startedAt?: Date;
  readonly finishedAt?: Date;
  /** Where the phone's adbd listens; present while it runs. */
  readonly adb?: AdbEndpoint;
  /** Its network address while it runs (docker runtime). */
  readonly network?: PhoneNetwork;
  readonly labels: Readonly<Record<string, string>>;
}

export type RuntimeEventType = 'create' | 'start' | 'die' | 'stop' | 'remove';

export interface RuntimeEvent {
  readonly type: RuntimeEventType;
  readonly deviceId: string;
  readonly at: Date;
  /** For `die`: the exit code when the runtime reports one. */
  readonly exitCode?: number;
}

export interface StopOptions {
  /** Grace period before the phone is killed. */
  readonly timeoutMs: number;
}

export interface RemoveOptions {
  /** Keep the phone's data (its /data volume) for a later create with the same device id. */
  readonly keepData: boolean;
}
