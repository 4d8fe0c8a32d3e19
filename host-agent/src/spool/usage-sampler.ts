import type { Logger } from 'pino';
import type { SampleInit, SpooledSample, UsageSpool } from './usage-spool.js';

/** What the sampler needs to know about one device that counts as running. */
export interface MeteredDevice {
  readonly deviceId: string;
  readonly tenantId: string;
  readonly vcpuMillicores: number;
  readonly memoryMib: number;
  readonly storageGib: number;
  /** Proto DeviceState number. */
  readonly state: number;
  readonly specRevision: number;
}

export interface UsageSamplerOptions {
  readonly spool: UsageSpool;
  /** Interval length, ms; ticks are aligned to multiples of it (the minute, by default). */
  readonly intervalMs: number;
  /** The devices to bill for the interval that just ended. */
  readonly devices: () => readonly MeteredDevice[];
  /**
   * Egress bytes of these devices since they were last taken (the network isolation's meter);
   * unset: no egress is metered.
   */
  readonly egress?: (deviceIds: readonly string[]) => Promise<ReadonlyMap<string, bigint>>;
  /** Called with each durable batch, so the session can send it at once. */
  readonly onAppended: (samples: readonly SpooledSample[]) => void;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * Writes one sample per running device at the end of every interval. Intervals are aligned to the
 * clock ([k*interval, (k+1)*interval)) so samples from different hosts line up for billing.
 */
export class UsageSampler {
  readonly #options: UsageSamplerOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: UsageSamplerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    this.#stopped = false;
    this.#arm();
  }

  /** Takes the samples of the interval ending at `endMs` (the tick calls it; tests may too). */
  async sampleNow(endMs: number = this.#alignedNow()): Promise<SpooledSample[]> {
    const startMs = endMs - this.#options.intervalMs;
    const devices = this.#options.devices();
    const egress = await this.#options.egress?.(devices.map((d) => d.deviceId));
    const inits: SampleInit[] = devices.map((d) => ({
      deviceId: d.deviceId,
      tenantId: d.tenantId,
      startMs,
      endMs,
      vcpuMillicores: d.vcpuMillicores,
      memoryMib: d.memoryMib,
      storageGib: d.storageGib,
      state: d.state,
      specRevision: d.specRevision,
      ...(egress !== undefined ? { egressBytes: Number(egress.get(d.deviceId) ?? 0n) } : {}),
    }));
    const written = await this.#options.spool.append(inits);
    if (written.length > 0) this.#options.onAppended(written);
    return written;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #alignedNow(): number {
    const interval = this.#options.intervalMs;
    return Math.floor(this.#now() / interval) * interval;
  }

  #arm(): void {
    if (this.#stopped) return;
    const interval = this.#options.intervalMs;
    const next = this.#alignedNow() + interval;
    this.#timer = setTimeout(
      () => {
        this.#running = this.sampleNow(next)
          .then(
            () => undefined,
            (err: unknown) => this.#options.logger.error({ err }, 'usage sample not written'),
          )
          .finally(() => this.#arm());
      },
      Math.max(0, next - this.#now()),
    );
    this.#timer.unref();
  }
}
