import type { DeviceSpec, RemoveOptions, RuntimeDevice, RuntimeEvent, StopOptions } from './types.js';

/**
 * Runs phones on one host. Implementations: `docker` (Redroid containers through the Docker Engine
 * API) and `sim` (virtual phones inside the agent process). Both pass the contract in contract.ts.
 *
 * The runtime holds no desired state: the agent's reconciler decides what should run and calls
 * these methods to converge; it restarts phones by policy (containers are made with restart
 * policy `no`). Every phone is found again by its labels, so a fresh runtime instance (an agent
 * restart) sees exactly the phones the previous one made.
 */
export interface ContainerRuntime {
  /** `docker` or `sim`, for logs and the agent's Hello. */
  readonly name: string;

  /**
   * Creates the phone, stopped. Idempotent by device id: if the phone already exists with the same
   * spec revision it is adopted and returned as is; with another revision this throws
   * `SpecRevisionConflictError` (the reconciler decides whether to replace it, keeping data).
   */
  create(spec: DeviceSpec): Promise<RuntimeDevice>;

  /** Starts the phone; starting a running phone is a no-op. Throws `DeviceNotFoundError`. */
  start(deviceId: string): Promise<void>;

  /** Stops the phone within `timeoutMs`; stopping a stopped phone is a no-op. Throws `DeviceNotFoundError`. */
  stop(deviceId: string, options: StopOptions): Promise<void>;

  /**
   * Removes the phone (stopping it first). `keepData: false` also deletes its data, as deleting a
   * device does. Removing an unknown device is a no-op.
   */
  remove(deviceId: string, options: RemoveOptions): Promise<void>;

  /** The phone as the runtime sees it now, or undefined when it does not exist. */
  inspect(deviceId: string): Promise<RuntimeDevice | undefined>;

  /** Every phone this runtime manages on this host, found by label; one entry per device id. */
  list(): Promise<RuntimeDevice[]>;

  /** Lifecycle events until `signal` aborts; the iterable then ends without error. */
  events(signal: AbortSignal): AsyncIterable<RuntimeEvent>;

  /** Releases the runtime's own resources. Phones keep running (docker) or stop with it (sim). */
  close(): Promise<void>;
}
