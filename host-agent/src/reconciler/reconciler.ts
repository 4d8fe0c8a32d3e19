import { agentv1 } from '@cphone/proto';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { AdbEndpoint, ContainerRuntime } from '../runtime/index.js';
import { Backoff } from '../session/backoff.js';
import type { MeteredDevice } from '../spool/index.js';
import type { BootProbe } from './boot-probe.js';
import { Converger, isLive } from './converge.js';
import { type Desired, desiredFromProto, desiredKey } from './desired.js';
import type { DesiredStore } from './desired-store.js';
import {
  type DeviceRecord,
  type Observe,
  OperationError,
  observe,
  operationFailure,
} from './device-record.js';
import { observationOf, sameObservation, toObservedDevice } from './observed.js';
import { KeyedWorkQueue } from './work-queue.js';

export interface ReconcilerOptions {
  readonly runtime: ContainerRuntime;
  readonly bootProbe: BootProbe;
  readonly logger: Logger;
  /** Receives every observed change, in order per device. */
  readonly onStatus: (device: agentv1.ObservedDevice) => void;
  readonly metrics?: Metrics;
  /** Keeps the desired set across agent restarts; none keeps it in memory only. */
  readonly store?: DesiredStore;
  /** Devices worked on in parallel. Default 8. */
  readonly concurrency?: number;
  /** Stop grace period, ms. Default 30000. */
  readonly stopTimeoutMs?: number;
  /** Android must boot within this, ms. Default 300000. */
  readonly bootTimeoutMs?: number;
  /** Retry delays after a failed runtime operation (full jitter), ms. Default 1000..60000. */
  readonly retryBaseMs?: number;
  readonly retryCapMs?: number;
  /** Delays before restarting an exited device, doubling per consecutive exit, ms. Default 1000..60000. */
  readonly restartBaseMs?: number;
  readonly restartCapMs?: number;
  /** More consecutive failed runs than this is a crash loop (ERROR, no more restarts). Default 5. */
  readonly maxRestarts?: number;
  /** A run this long (ms) clears the consecutive-failure count. Default 600000. */
  readonly crashResetMs?: number;
  /** Every device is checked this often even without events, ms. Default 30000. */
  readonly resyncIntervalMs?: number;
}

/**
 * Converges the phones of the runtime to the desired set from the control plane, level-triggered:
 * every trigger (desired change, runtime event, retry timer, periodic resync) runs one idempotent
 * `converge` for the device, which reads the runtime and takes the next steps. One converge at a
 * time per device (KeyedWorkQueue); different devices in parallel. Closing never stops a phone.
 */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #runtime: ContainerRuntime;
  readonly #log: Logger;
  readonly #queue: KeyedWorkQueue;
  readonly #converger: Converger;
  readonly #records = new Map<string, DeviceRecord>();
  #desired = new Map<string, { proto: agentv1.DesiredDevice; desired: Desired }>();
  /** False until a full set arrived (now or before a restart): until then unlisted devices are left alone. */
  #desiredKnown = false;
  #revision = 0n;
  #desiredChain: Promise<unknown> = Promise.resolve();
  readonly #events = new AbortController();
  #resync: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#runtime = options.runtime;
    this.#log = options.logger.child({ module: 'reconciler' });
    this.#queue = new KeyedWorkQueue((id) => this.#sync(id), options.concurrency ?? 8);
    this.#converger = new Converger({
      runtime: options.runtime,
      bootProbe: options.bootProbe,
      settings: options,
      log: this.#log,
      metrics: options.metrics,
      queue: this.#queue,
      report: (rec, state, fields) => this.#report(rec, state, fields),
      forget: (rec) => {
        if (this.#records.get(rec.deviceId) !== rec) return;
        this.#records.delete(rec.deviceId);
        this.#countMove(rec.observation?.state, undefined);
      },
    });
  }

  /** Loads the saved desired set, adopts the runtime's phones, and starts converging. */
  async start(): Promise<void> {
    const saved = await this.#o.store?.load();
    if (saved !== undefined) this.#setDesired(saved.revision, saved.devices);
    for (const actual of await this.#runtime.list()) {
      const rec = this.#record(actual.deviceId, actual.tenantId);
      // The container reflects the generation last applied before the restart, as far as we know.
      rec.appliedGeneration = this.#desired.get(actual.deviceId)?.desired.restartGeneration;
      const before = rec.observation?.state;
      rec.observation = observationOf(actual, false);
      this.#countMove(before, rec.observation.state);
      if (isLive(actual)) rec.intent = 'running';
    }
    this.#log.info(
      {
        adopted: this.#records.size,
        desiredRevision: this.#revision.toString(),
        desiredKnown: this.#desiredKnown,
      },
      'reconciler started',
    );
    void this.#watchEvents();
    this.#resync = setInterval(() => void this.#scheduleAll(), this.#o.resyncIntervalMs ?? 30_000);
    this.#resync.unref();
    await this.#scheduleAll();
  }

  /** Revision of the last desired set or delta applied (0n before any). */
  get desiredRevision(): bigint {
    return this.#revision;
  }

  /** The full desired set: replaces whatever the agent had; devices not listed are deleted. */
  applyDesired(message: agentv1.DesiredDevices): Promise<void> {
    return this.#changeDesired(async () => {
      if (message.revision < this.#revision) {
        this.#log.warn(
          { revision: message.revision.toString(), current: this.#revision.toString() },
          'desired set revision went backwards; applying it as authoritative',
        );
      }
      const kept = new Set(message.devices.map((d) => d.deviceId));
      // Devices dropped from the set are removals like DeviceRemove's, made or not yet.
      for (const id of this.#desired.keys()) if (!kept.has(id)) this.#record(id, '').removeRequested = true;
      this.#setDesired(message.revision, message.devices);
      await this.#persist();
      await this.#scheduleAll();
    });
  }

  /** A delta; ignored (false) when its revision is not above the last applied. */
  applyUpsert(message: agentv1.DeviceUpsert): Promise<boolean> {
    return this.#changeDesired(async () => {
      const device = message.device;
      if (message.revision <= this.#revision || device === undefined || device.deviceId === '') {
        this.#log.info(
          { revision: message.revision.toString(), current: this.#revision.toString() },
          'stale upsert ignored',
        );
        return false;
      }
      this.#revision = message.revision;
      this.#desired.set(device.deviceId, { proto: device, desired: desiredFromProto(device) });
      await this.#persist();
      this.#queue.schedule(device.deviceId);
      return true;
    });
  }

  applyRemove(message: agentv1.DeviceRemove): Promise<boolean> {
    return this.#changeDesired(async () => {
      if (message.revision <= this.#revision) {
        this.#log.info(
          { revision: message.revision.toString(), current: this.#revision.toString() },
          'stale remove ignored',
        );
        return false;
      }
      this.#revision = message.revision;
      this.#desired.delete(message.deviceId);
      // Deleting is only safe when this device is known to be unwanted, whatever else is unknown.
      this.#record(message.deviceId, '').removeRequested = true;
      await this.#persist();
      this.#queue.schedule(message.deviceId);
      return true;
    });
  }

  /** Every device held, as last observed (Hello's inventory). */
  inventory(): agentv1.ObservedDevice[] {
    const now = new Date();
    return [...this.#records.values()]
      .filter((r) => r.observation !== undefined)
      .map((r) => toObservedDevice(r.deviceId, r.tenantId, r.observation!, now));
  }

  /** One device as last observed. */
  observed(deviceId: string): agentv1.ObservedDevice | undefined {
    const rec = this.#records.get(deviceId);
    return rec?.observation === undefined
      ? undefined
      : toObservedDevice(rec.deviceId, rec.tenantId, rec.observation, new Date());
  }

  /** Where a live device's adbd listens, for commands. */
  adbEndpoint(deviceId: string): AdbEndpoint | undefined {
    const rec = this.#records.get(deviceId);
    const state = rec?.observation?.state;
    return state === agentv1.DeviceState.RUNNING || state === agentv1.DeviceState.BOOTING
      ? rec?.adb
      : undefined;
  }

  /** The adb endpoints of every live device (the ADB pool keeps only these). */
  liveEndpoints(): AdbEndpoint[] {
    return [...this.#records.values()].flatMap((r) => (r.live && r.adb !== undefined ? [r.adb] : []));
  }

  /** Devices whose container runs (BOOTING or RUNNING). */
  runningCount(): number {
    return [...this.#records.values()].filter((r) => r.live).length;
  }

  /** The running devices with their allocations, for the usage sampler. */
  metered(): MeteredDevice[] {
    const out: MeteredDevice[] = [];
    for (const rec of this.#records.values()) {
      const spec = this.#desired.get(rec.deviceId)?.desired.spec;
      if (!rec.live || spec === undefined || rec.observation === undefined) continue;
      out.push({
        deviceId: rec.deviceId,
        tenantId: rec.tenantId,
        vcpuMillicores: spec.vcpuMillicores,
        memoryMib: spec.memoryMib,
        storageGib: spec.storageGib,
        state: rec.observation.state,
        specRevision: rec.observation.specRevision,
      });
    }
    return out;
  }

  /** Resolves when no converge is queued or running (retry timers may still be pending). */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** Stops converging. Phones are left exactly as they are. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#resync);
    this.#events.abort();
    for (const rec of this.#records.values()) this.#converger.abortProbe(rec);
    await this.#queue.close();
  }

  #setDesired(revision: bigint, devices: readonly agentv1.DesiredDevice[]): void {
    this.#revision = revision;
    this.#desiredKnown = true;
    this.#desired = new Map(devices.map((d) => [d.deviceId, { proto: d, desired: desiredFromProto(d) }]));
    this.#o.metrics?.desiredRevision.set(Number(revision));
  }

  async #persist(): Promise<void> {
    this.#o.metrics?.desiredRevision.set(Number(this.#revision));
    await this.#o.store?.save(
      this.#revision,
      [...this.#desired.values()].map((d) => d.proto),
    );
  }

  #changeDesired<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#desiredChain.then(change);
    this.#desiredChain = run.catch(() => undefined);
    return run;
  }

  async #scheduleAll(): Promise<void> {
    const ids = new Set([...this.#desired.keys(), ...this.#records.keys()]);
    try {
      for (const d of await this.#runtime.list()) ids.add(d.deviceId);
    } catch (err) {
      this.#log.warn({ err }, 'runtime list failed; converging the devices already known');
    }
    for (const id of ids) this.#queue.schedule(id);
  }

  async #watchEvents(): Promise<void> {
    const signal = this.#events.signal;
    while (!signal.aborted) {
      try {
        for await (const event of this.#runtime.events(signal)) this.#queue.schedule(event.deviceId);
      } catch (err) {
        this.#log.warn({ err }, 'runtime event stream failed; resubscribing');
      }
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 1000).unref());
    }
  }

  #record(deviceId: string, tenantId: string): DeviceRecord {
    let rec = this.#records.get(deviceId);
    if (rec === undefined) {
      rec = {
        deviceId,
        tenantId,
        observation: undefined,
        intent: undefined,
        appliedGeneration: undefined,
        restartCount: 0,
        crashes: 0,
        lastStartMs: 0,
        haltKey: undefined,
        notBefore: 0,
        retry: new Backoff({ baseMs: this.#o.retryBaseMs ?? 1000, capMs: this.#o.retryCapMs ?? 60_000 }),
        probe: undefined,
        adb: undefined,
        live: false,
        removeRequested: false,
      };
      this.#records.set(deviceId, rec);
    }
    if (tenantId !== '') rec.tenantId = tenantId;
    return rec;
  }

  #report(rec: DeviceRecord, state: agentv1.DeviceState, fields: Omit<Observe, 'state'> = {}): void {
    const next = observe(rec, { state, ...fields });
    rec.live = state === agentv1.DeviceState.BOOTING || state === agentv1.DeviceState.RUNNING;
    if (rec.observation !== undefined && sameObservation(rec.observation, next)) return;
    const before = rec.observation?.state;
    rec.observation = next;
    this.#log.info(
      {
        deviceId: rec.deviceId,
        state: agentv1.DeviceState[state],
        reason: next.reason || undefined,
        message: next.message || undefined,
      },
      'device state',
    );
    this.#o.onStatus(toObservedDevice(rec.deviceId, rec.tenantId, next, new Date()));
    this.#countMove(before, state);
  }

  async #sync(deviceId: string): Promise<void> {
    if (this.#closed) return;
    const rec = this.#record(deviceId, '');
    try {
      const entry = this.#desired.get(deviceId);
      await this.#converger.converge(rec, entry?.desired, this.#desiredKnown || rec.removeRequested);
      rec.retry.reset();
    } catch (err) {
      if (this.#closed) return;
      const failure = operationFailure(err);
      const delayMs = rec.retry.next();
      this.#log.warn(
        { err, deviceId, reason: failure.reason, retryInMs: failure.permanent ? undefined : delayMs },
        'converge failed',
      );
      if (err instanceof OperationError) {
        this.#report(rec, agentv1.DeviceState.ERROR, { reason: failure.reason, message: failure.message });
      }
      const desired = this.#desired.get(deviceId)?.desired;
      if (failure.permanent && desired !== undefined) rec.haltKey = desiredKey(desired);
      else this.#queue.scheduleAfter(deviceId, delayMs);
    }
  }

  /**
   * Moves one device between the series of the devices-by-state gauge. Kept incrementally: a
   * recount of every record on each report made convergence quadratic in the number of devices.
   */
  #countMove(from: agentv1.DeviceState | undefined, to: agentv1.DeviceState | undefined): void {
    const gauge = this.#o.metrics?.devices;
    if (gauge === undefined || from === to) return;
    if (from !== undefined) gauge.dec({ state: agentv1.DeviceState[from] ?? 'UNKNOWN' });
    if (to !== undefined) gauge.inc({ state: agentv1.DeviceState[to] ?? 'UNKNOWN' });
  }
}
