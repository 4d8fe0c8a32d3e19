// Test support: a runtime wrapper that records calls and lets a test crash a phone with an exit code.
import type {
  ContainerRuntime,
  DeviceSpec,
  RemoveOptions,
  RuntimeDevice,
  RuntimeEvent,
  StopOptions,
} from '../runtime/index.js';

export type RuntimeCall = readonly [operation: 'create' | 'start' | 'stop' | 'remove', deviceId: string];

/**
 * Delegates to a real runtime (the sim runtime in tests) and records every mutating call. `crash`
 * stops the phone behind the agent's back and makes the runtime report the given exit code, as a
 * container whose Android died would.
 */
export class RecordingRuntime implements ContainerRuntime {
  readonly calls: RuntimeCall[] = [];
  readonly #inner: ContainerRuntime;
  readonly #exitCodes = new Map<string, number>();
  /** Make the next `create` of a device fail with this error. */
  readonly failCreate = new Map<string, Error>();
  /** Make the `create` of a device wait for this promise first. */
  readonly holdCreate = new Map<string, Promise<void>>();

  constructor(inner: ContainerRuntime) {
    this.#inner = inner;
  }

  get name(): string {
    return this.#inner.name;
  }

  async create(spec: DeviceSpec): Promise<RuntimeDevice> {
    this.calls.push(['create', spec.deviceId]);
    await this.holdCreate.get(spec.deviceId);
    const failure = this.failCreate.get(spec.deviceId);
    if (failure !== undefined) {
      this.failCreate.delete(spec.deviceId);
      throw failure;
    }
    return this.#patch(await this.#inner.create(spec));
  }

  async start(deviceId: string): Promise<void> {
    this.calls.push(['start', deviceId]);
    this.#exitCodes.delete(deviceId);
    await this.#inner.start(deviceId);
  }

  async stop(deviceId: string, options: StopOptions): Promise<void> {
    this.calls.push(['stop', deviceId]);
    await this.#inner.stop(deviceId, options);
  }

  async remove(deviceId: string, options: RemoveOptions): Promise<void> {
    this.calls.push(['remove', deviceId]);
    this.#exitCodes.delete(deviceId);
    await this.#inner.remove(deviceId, options);
  }

  async inspect(deviceId: string): Promise<RuntimeDevice | undefined> {
    const device = await this.#inner.inspect(deviceId);
    return device === undefined ? undefined : this.#patch(device);
  }

  async list(): Promise<RuntimeDevice[]> {
    return (await this.#inner.list()).map((d) => this.#patch(d));
  }

  events(signal: AbortSignal): AsyncIterable<RuntimeEvent> {
    return this.#inner.events(signal);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** The phone dies on its own with `exitCode`. */
  async crash(deviceId: string, exitCode: number): Promise<void> {
    this.#exitCodes.set(deviceId, exitCode);
    await this.#inner.stop(deviceId, { timeoutMs: 0 });
  }

  count(operation: RuntimeCall[0], deviceId?: string): number {
    return this.calls.filter(([op, id]) => op === operation && (deviceId === undefined || id === deviceId))
      .length;
  }

  #patch(device: RuntimeDevice): RuntimeDevice {
    const exitCode = this.#exitCodes.get(device.deviceId);
    return exitCode === undefined || device.state !== 'exited' ? device : { ...device, exitCode };
  }
}
