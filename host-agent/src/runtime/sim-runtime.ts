import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerRuntime } from './container-runtime.js';
import { DeviceNotFoundError, RuntimeError, SpecRevisionConflictError } from './errors.js';
import { EventHub } from './event-queue.js';
import { deviceLabels } from './labels.js';
import {
  androidFromImage,
  type LaunchedPhone,
  launchVirtualPhone,
  type PhoneLauncher,
} from './sim-launcher.js';
import { type SimRecord, SimStore } from './sim-store.js';
import { validateDeviceSpec } from './spec.js';
import type {
  DeviceSpec,
  RemoveOptions,
  RuntimeDevice,
  RuntimeEvent,
  RuntimeEventType,
  StopOptions,
} from './types.js';

export interface SimRuntimeOptions {
  /** Holds `sim-runtime.json` and one data folder per phone (the stand-in for its /data volume). */
  readonly dataDir: string;
  /** Address the phones listen on. Default 127.0.0.1: like Redroid's adbd, reachable from this host only. */
  readonly host?: string;
  /** Passed to each virtual phone: how long it pretends to boot. Default 0. */
  readonly bootDelayMs?: number;
  /** Label scope, as in the docker runtime. Default `sim`. */
  readonly scope?: string;
  readonly launch?: PhoneLauncher;
}

/**
 * Phones as virtual phones inside the agent process: no containers, same lifecycle. A phone cannot
 * outlive the process that runs it, so the runtime records what each phone should be doing and,
 * when a new agent process opens the runtime, starts again every phone recorded as running (on its
 * previous port when free). To the reconciler this looks like containers that kept running.
 */
export class SimRuntime implements ContainerRuntime {
  readonly name = 'sim';
  readonly #dataDir: string;
  readonly #host: string;
  readonly #bootDelayMs: number;
  readonly #scope: string;
  readonly #launch: PhoneLauncher;
  readonly #store: SimStore;
  readonly #phones = new Map<string, LaunchedPhone>();
  readonly #hub = new EventHub();
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: SimRuntimeOptions) {
    this.#dataDir = options.dataDir;
    this.#host = options.host ?? '127.0.0.1';
    this.#bootDelayMs = options.bootDelayMs ?? 0;
    this.#scope = options.scope ?? 'sim';
    this.#launch = options.launch ?? launchVirtualPhone;
    this.#store = new SimStore(join(this.#dataDir, 'sim-runtime.json'));
  }

  /** Loads the recorded phones and starts again the ones that were running. */
  async open(): Promise<void> {
    await this.#store.load();
    for (const record of this.#store.all()) {
      if (record.state === 'running') await this.#startPhone(record, 'adopt');
    }
  }

  /** Where a phone's data lives on this host (its /data). */
  dataPath(deviceId: string): string {
    return join(this.#dataDir, 'devices', deviceId, 'data');
  }

  async create(spec: DeviceSpec): Promise<RuntimeDevice> {
    validateDeviceSpec(spec);
    return await this.#serial(async () => {
      const existing = this.#store.get(spec.deviceId);
      if (existing !== undefined) {
        if (existing.spec.specRevision !== spec.specRevision) {
          throw new SpecRevisionConflictError(spec.deviceId, existing.spec.specRevision, spec.specRevision);
        }
        return this.#device(existing);
      }
      await mkdir(this.dataPath(spec.deviceId), { recursive: true });
      const record: SimRecord = { spec, runtimeId: randomUUID(), state: 'created' };
      await this.#store.put(record);
      this.#emit('create', spec.deviceId);
      return this.#device(record);
    });
  }

  start(deviceId: string): Promise<void> {
    return this.#serial(async () => {
      const record = this.#require(deviceId);
      if (record.state === 'running' && this.#phones.has(deviceId)) return;
      await this.#startPhone(record, 'start');
    });
  }

  stop(deviceId: string, _options: StopOptions): Promise<void> {
    // A virtual phone closes at once: there is no guest to wait for, so the grace period is moot.
    return this.#serial(async () => {
      const record = this.#require(deviceId);
      if (record.state !== 'running') return;
      await this.#stopPhone(record);
    });
  }

  remove(deviceId: string, options: RemoveOptions): Promise<void> {
    return this.#serial(async () => {
      const record = this.#store.get(deviceId);
      if (record !== undefined) {
        if (record.state === 'running') await this.#stopPhone(record);
        await this.#store.delete(deviceId);
        this.#emit('remove', deviceId);
      }
      if (!options.keepData)
        await rm(join(this.#dataDir, 'devices', deviceId), { recursive: true, force: true });
    });
  }

  async inspect(deviceId: string): Promise<RuntimeDevice | undefined> {
    const record = this.#store.get(deviceId);
    return record === undefined ? undefined : this.#device(record);
  }

  async list(): Promise<RuntimeDevice[]> {
    return this.#store
      .all()
      .map((r) => this.#device(r))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  events(signal: AbortSignal): AsyncIterable<RuntimeEvent> {
    return this.#hub.subscribe(signal);
  }

  /** Closes the phones as a process exit would: their records stay `running` for the next open(). */
  close(): Promise<void> {
    return this.#serial(async () => {
      this.#closed = true;
      const phones = [...this.#phones.values()];
      this.#phones.clear();
      await Promise.all(phones.map((p) => p.close()));
    });
  }

  async #startPhone(record: SimRecord, reason: 'start' | 'adopt'): Promise<void> {
    const { spec } = record;
    const android = androidFromImage(spec.image);
    const launch = (port: number) =>
      this.#launch({
        host: this.#host,
        port,
        serial: spec.deviceId,
        bootDelayMs: this.#bootDelayMs,
        screen: spec.screen,
        dataDir: this.dataPath(spec.deviceId),
        ...(spec.properties['ro.product.model'] !== undefined
          ? { model: spec.properties['ro.product.model'] }
          : {}),
        ...(android ? { android } : {}),
      });
    let phone: LaunchedPhone;
    try {
      phone = await launch(record.port ?? 0);
    } catch (err) {
      if (record.port === undefined || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      phone = await launch(0); // the old port was taken meanwhile: any port will do
    }
    this.#phones.set(spec.deviceId, phone);
    const startedAt = reason === 'adopt' && record.startedAt ? record.startedAt : new Date().toISOString();
    await this.#store.put({ ...record, state: 'running', port: phone.port, startedAt });
    if (reason === 'start') this.#emit('start', spec.deviceId);
  }

  async #stopPhone(record: SimRecord): Promise<void> {
    const phone = this.#phones.get(record.spec.deviceId);
    this.#phones.delete(record.spec.deviceId);
    await phone?.close();
    await this.#store.put({ ...record, state: 'exited', exitCode: 0, finishedAt: new Date().toISOString() });
    this.#emit('die', record.spec.deviceId, 0);
    this.#emit('stop', record.spec.deviceId);
  }

  #require(deviceId: string): SimRecord {
    const record = this.#store.get(deviceId);
    if (record === undefined) throw new DeviceNotFoundError(deviceId);
    return record;
  }

  #device(record: SimRecord): RuntimeDevice {
    const { spec } = record;
    const phone = this.#phones.get(spec.deviceId);
    const running = record.state === 'running' && phone !== undefined;
    return {
      deviceId: spec.deviceId,
      tenantId: spec.tenantId,
      specRevision: spec.specRevision,
      image: spec.image,
      // Recorded as running but not started in this process (before open()): report what is true.
      state: record.state === 'running' && !running ? 'exited' : record.state,
      runtimeId: record.runtimeId,
      labels: deviceLabels(spec, this.#scope),
      ...(record.exitCode !== undefined && !running ? { exitCode: record.exitCode } : {}),
      ...(record.startedAt !== undefined ? { startedAt: new Date(record.startedAt) } : {}),
      ...(record.finishedAt !== undefined ? { finishedAt: new Date(record.finishedAt) } : {}),
      ...(running ? { adb: { host: this.#host, port: phone.port } } : {}),
    };
  }

  #emit(type: RuntimeEventType, deviceId: string, exitCode?: number): void {
    this.#hub.emit({ type, deviceId, at: new Date(), ...(exitCode !== undefined ? { exitCode } : {}) });
  }

  /** One mutation at a time: the store and the phone map change together. */
  #serial<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => {
      if (this.#closed) throw new RuntimeError('sim runtime is closed');
      return operation();
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

export async function createSimRuntime(options: SimRuntimeOptions): Promise<SimRuntime> {
  const runtime = new SimRuntime(options);
  await runtime.open();
  return runtime;
}
