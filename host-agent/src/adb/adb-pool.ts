import type { AdbCredentialStore } from '@yume-chan/adb';
import type { Logger } from 'pino';
import { type AdbEndpoint, endpointKey } from './connect.js';
import { DeviceAdb } from './device-adb.js';
import type { BootProbe } from './interfaces.js';

export interface AdbPoolOptions {
  /** The agent's key (FileCredentialStore in the daemon). */
  credentialStore: AdbCredentialStore;
  /** Per device; default 4. */
  maxConcurrentPerDevice?: number;
  /** Default 10 s. */
  connectTimeoutMs?: number;
  /** Default true. */
  shellV2?: boolean;
  logger?: Logger;
}

/** One DeviceAdb per adbd endpoint on this host, created on first use, closed on release. */
export class AdbPool implements BootProbe {
  readonly #devices = new Map<string, DeviceAdb>();
  readonly #options: AdbPoolOptions;
  #closed = false;

  constructor(options: AdbPoolOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#devices.size;
  }

  /** The client for `endpoint` (lazily connected: creating it opens nothing). */
  device(endpoint: AdbEndpoint): DeviceAdb {
    if (this.#closed) throw new Error('AdbPool is closed');
    const key = endpointKey(endpoint);
    let device = this.#devices.get(key);
    if (!device) {
      device = new DeviceAdb({
        endpoint: { host: endpoint.host, port: endpoint.port },
        credentialStore: this.#options.credentialStore,
        ...(this.#options.maxConcurrentPerDevice === undefined
          ? {}
          : { maxConcurrent: this.#options.maxConcurrentPerDevice }),
        ...(this.#options.connectTimeoutMs === undefined
          ? {}
          : { connectTimeoutMs: this.#options.connectTimeoutMs }),
        ...(this.#options.shellV2 === undefined ? {} : { shellV2: this.#options.shellV2 }),
        ...(this.#options.logger ? { logger: this.#options.logger } : {}),
      });
      this.#devices.set(key, device);
    }
    return device;
  }

  waitForBoot(endpoint: AdbEndpoint, signal: AbortSignal): Promise<void> {
    return this.device(endpoint).waitForBoot(signal);
  }

  /** The device went away (removed, or its endpoint changed): close its connection. */
  async release(endpoint: AdbEndpoint): Promise<void> {
    const key = endpointKey(endpoint);
    const device = this.#devices.get(key);
    this.#devices.delete(key);
    await device?.close();
  }

  /** Releases every endpoint not in `keep` (the devices the runtime still reports). */
  async retain(keep: Iterable<AdbEndpoint>): Promise<void> {
    const wanted = new Set([...keep].map(endpointKey));
    await Promise.all(
      [...this.#devices.values()]
        .filter((d) => !wanted.has(endpointKey(d.endpoint)))
        .map((d) => this.release(d.endpoint)),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    const devices = [...this.#devices.values()];
    this.#devices.clear();
    await Promise.all(devices.map((d) => d.close()));
  }
}
