import { agentv1 } from '@cphone/proto';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { type ContainerRuntime, InvalidSpecError, type RuntimeDevice } from '../runtime/index.js';
import type { BootProbe } from './boot-probe.js';
import { type Desired, desiredKey } from './desired.js';
import { type DeviceRecord, type Observe, OperationError } from './device-record.js';
import { observationOf } from './observed.js';
import { decideAfterExit } from './restart-policy.js';
import type { KeyedWorkQueue } from './work-queue.js';

/** Timings and limits of convergence; see ReconcilerOptions for the defaults. */
export interface ConvergeSettings {
  readonly stopTimeoutMs?: number;
  readonly bootTimeoutMs?: number;
  readonly restartBaseMs?: number;
  readonly restartCapMs?: number;
  readonly maxRestarts?: number;
  readonly crashResetMs?: number;
}

/** What the converger needs from the reconciler that owns the records. */
export interface ConvergeContext {
  readonly runtime: ContainerRuntime;
  readonly bootProbe: BootProbe;
  readonly settings: ConvergeSettings;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
  readonly queue: KeyedWorkQueue;
  /** Reports an observation (deduplicated by the reconciler). */
  report(rec: DeviceRecord, state: agentv1.DeviceState, fields?: Omit<Observe, 'state'>): void;
  /** The device is gone for good: drop its record. */
  forget(rec: DeviceRecord): void;
}

export const isLive = (d: RuntimeDevice | undefined): d is RuntimeDevice =>
  d !== undefined && (d.state === 'running' || d.state === 'restarting');

/**
 * The steps that move one device toward its desired state. Stateless apart from the device record
 * it is handed; the reconciler runs at most one converge per device at a time.
 */
export class Converger {
  readonly #ctx: ConvergeContext;
  readonly #runtime: ContainerRuntime;
  readonly #o: ConvergeSettings;

  constructor(ctx: ConvergeContext) {
    this.#ctx = ctx;
    this.#runtime = ctx.runtime;
    this.#o = ctx.settings;
  }

  /** Stops watching a device's boot (the phone is being stopped, replaced or the agent closes). */
  abortProbe(rec: DeviceRecord): void {
    this.#abortProbe(rec);
  }

  async #op<T>(rec: DeviceRecord, operation: string, run: () => Promise<T>): Promise<T> {
    try {
      const result = await run();
      this.#ctx.metrics?.reconcileOperations.inc({ operation, outcome: 'ok' });
      return result;
    } catch (err) {
      this.#ctx.metrics?.reconcileOperations.inc({ operation, outcome: 'error' });
      throw new OperationError(operation, rec.deviceId, err);
    }
  }

  /** A spec the contract refuses fails as the runtime's own check would: INVALID_SPEC, no retry. */
  #create(desired: Desired): Promise<RuntimeDevice> {
    const bad = desired.specViolation;
    if (bad) return Promise.reject(new InvalidSpecError(bad.field, bad.value, bad.reason));
    return this.#runtime.create(desired.spec);
  }

  /**
   * One pass for one device: read the runtime, take the next steps toward `desired`. Without a
   * desired device, `unwanted` says whether it is known to be unwanted (delete it) or whether the
   * desired state is simply unknown yet (observe only).
   */
  async converge(rec: DeviceRecord, desired: Desired | undefined, unwanted: boolean): Promise<void> {
    const id = rec.deviceId;
    let current = await this.#runtime.inspect(id);
    if (desired === undefined && unwanted) return this.#delete(rec, current);
    if (desired === undefined) return this.#observeOnly(rec, current);
    rec.tenantId = desired.tenantId;
    rec.removeRequested = false;
    const key = desiredKey(desired);
    if (rec.haltKey !== undefined && rec.haltKey !== key) {
      rec.haltKey = undefined;
      rec.crashes = 0;
      rec.notBefore = 0;
    }
    if (rec.haltKey !== undefined) return; // gave up on this instruction; a new one clears the halt

    if (current === undefined) {
      if (rec.observation === undefined || rec.observation.state === agentv1.DeviceState.CREATING) {
        this.#ctx.report(rec, agentv1.DeviceState.CREATING, { specRevision: desired.specRevision });
      }
      current = await this.#op(rec, 'create', () => this.#create(desired));
      this.#resetRun(rec, desired);
    } else if (current.specRevision !== desired.specRevision) {
      // A new spec: replace the container, keeping the data volume.
      if (isLive(current)) this.#ctx.report(rec, agentv1.DeviceState.STOPPING, { current });
      this.#abortProbe(rec);
      rec.intent = undefined;
      await this.#op(rec, 'remove', () => this.#runtime.remove(id, { keepData: true }));
      current = await this.#op(rec, 'create', () => this.#create(desired));
      this.#resetRun(rec, desired);
    }

    if (desired.power === 'stopped') {
      rec.intent = 'stopped';
      rec.notBefore = 0;
      this.#abortProbe(rec);
      if (isLive(current)) {
        this.#ctx.report(rec, agentv1.DeviceState.STOPPING, { current });
        await this.#op(rec, 'stop', () =>
          this.#runtime.stop(id, { timeoutMs: this.#o.stopTimeoutMs ?? 30_000 }),
        );
      }
      rec.appliedGeneration = desired.restartGeneration;
      this.#ctx.report(rec, agentv1.DeviceState.STOPPED, { current, specRevision: desired.specRevision });
      return;
    }

    if (isLive(current)) {
      rec.appliedGeneration ??= desired.restartGeneration;
      if (desired.restartGeneration > rec.appliedGeneration) {
        // A hard reboot was asked for: restart the container.
        this.#abortProbe(rec);
        rec.intent = 'running';
        await this.#op(rec, 'stop', () =>
          this.#runtime.stop(id, { timeoutMs: this.#o.stopTimeoutMs ?? 30_000 }),
        );
        await this.#op(rec, 'start', () => this.#runtime.start(id));
        rec.appliedGeneration = desired.restartGeneration;
        rec.restartCount++;
        rec.lastStartMs = Date.now();
        this.#ctx.metrics?.deviceRestarts.inc({ reason: 'RESTART_REQUESTED' });
        current = await this.#runtime.inspect(id);
      } else if (rec.intent !== 'running') {
        rec.intent = 'running'; // adopted, or started by someone else
        rec.lastStartMs ||= current.startedAt?.getTime() ?? Date.now();
      }
    } else if (rec.intent === 'running') {
      return this.#handleFailure(rec, desired, current, 'exit');
    } else {
      const wait = rec.notBefore - Date.now();
      if (wait > 0) {
        this.#ctx.queue.scheduleAfter(id, wait);
        return;
      }
      const restarting = rec.intent === 'restart';
      await this.#op(rec, 'start', () => this.#runtime.start(id));
      rec.intent = 'running';
      rec.appliedGeneration = desired.restartGeneration;
      rec.lastStartMs = Date.now();
      rec.notBefore = 0;
      if (restarting) {
        rec.restartCount++;
        this.#ctx.metrics?.deviceRestarts.inc({ reason: rec.observation?.reason || 'EXITED' });
      }
      current = await this.#runtime.inspect(id);
    }
    await this.#trackBoot(rec, desired, current);
  }

  /** A fresh container: its generation is the desired one, its failure history starts over. */
  #resetRun(rec: DeviceRecord, desired: Desired): void {
    rec.appliedGeneration = desired.restartGeneration;
    rec.intent = undefined;
    rec.crashes = 0;
    rec.restartCount = 0;
    rec.notBefore = 0;
  }

  /** Reports BOOTING until the boot probe says RUNNING; a failed boot is handled like an exit. */
  async #trackBoot(
    rec: DeviceRecord,
    desired: Desired | undefined,
    current: RuntimeDevice | undefined,
  ): Promise<void> {
    if (!isLive(current)) {
      this.#ctx.queue.schedule(rec.deviceId); // exited in between: the next converge sees why
      return;
    }
    const runKey = `${current.runtimeId}@${current.startedAt?.getTime() ?? ''}`;
    if (rec.probe?.key !== runKey) this.#startProbe(rec, current, runKey);
    const probe = rec.probe!;
    if (probe.outcome === 'failed') {
      if (desired !== undefined) return this.#handleFailure(rec, desired, current, 'boot');
      this.#ctx.report(rec, agentv1.DeviceState.ERROR, {
        current,
        reason: 'BOOT_TIMEOUT',
        message: probe.error ?? '',
      });
      return;
    }
    this.#ctx.report(
      rec,
      probe.outcome === 'booted' ? agentv1.DeviceState.RUNNING : agentv1.DeviceState.BOOTING,
      {
        current,
      },
    );
  }

  #startProbe(rec: DeviceRecord, current: RuntimeDevice, key: string): void {
    this.#abortProbe(rec);
    const controller = new AbortController();
    const probe: NonNullable<DeviceRecord['probe']> = { key, controller, outcome: 'pending' };
    rec.probe = probe;
    rec.adb = current.adb;
    const endpoint = current.adb;
    const timeoutMs = this.#o.bootTimeoutMs ?? 300_000;
    const timer = setTimeout(() => controller.abort(new Error(`no boot within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    const run =
      endpoint === undefined
        ? Promise.reject(new Error('the runtime reports no adb endpoint'))
        : this.#ctx.bootProbe.waitForBoot(endpoint, controller.signal);
    run
      .then(
        () => {
          probe.outcome = 'booted';
        },
        (err: unknown) => {
          // Aborted because the phone was stopped or replaced: not a verdict on this run.
          if (controller.signal.aborted && rec.probe !== probe) return;
          probe.outcome = 'failed';
          probe.error = err instanceof Error ? err.message : String(err);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        if (rec.probe === probe) this.#ctx.queue.schedule(rec.deviceId);
      });
  }

  #abortProbe(rec: DeviceRecord): void {
    const probe = rec.probe;
    rec.probe = undefined;
    probe?.controller.abort(new Error('phone stopped'));
  }

  async #handleFailure(
    rec: DeviceRecord,
    desired: Desired,
    current: RuntimeDevice | undefined,
    failure: 'exit' | 'boot',
  ): Promise<void> {
    const now = Date.now();
    if (rec.lastStartMs > 0 && now - rec.lastStartMs >= (this.#o.crashResetMs ?? 600_000)) rec.crashes = 0;
    rec.crashes++;
    const exitCode = failure === 'exit' ? current?.exitCode : undefined;
    const decision = decideAfterExit({
      policy: desired.restartPolicy,
      failure,
      exitCode,
      crashes: rec.crashes,
      maxRestarts: this.#o.maxRestarts ?? 5,
      baseDelayMs: this.#o.restartBaseMs ?? 1000,
      capDelayMs: this.#o.restartCapMs ?? 60_000,
    });
    const detail =
      failure === 'boot'
        ? `Android did not boot: ${rec.probe?.error ?? 'unknown'}`
        : `exited with code ${exitCode ?? 'unknown'}`;
    this.#abortProbe(rec);
    // A phone that never booted is stopped: its next run (if any) starts from a clean boot.
    if (failure === 'boot' && isLive(current)) {
      await this.#op(rec, 'stop', () =>
        this.#runtime.stop(rec.deviceId, { timeoutMs: this.#o.stopTimeoutMs ?? 30_000 }),
      );
    }
    const failed = failure === 'boot' || (exitCode !== undefined && exitCode !== 0);
    if (decision.action === 'halt') {
      rec.intent = undefined;
      rec.haltKey = desiredKey(desired);
      const state = decision.state === 'error' ? agentv1.DeviceState.ERROR : agentv1.DeviceState.STOPPED;
      const message =
        decision.reason === 'CRASH_LOOP' ? `${detail}; ${rec.crashes} failed runs in a row` : detail;
      this.#ctx.log.warn(
        { deviceId: rec.deviceId, reason: decision.reason, policy: desired.restartPolicy },
        'device not restarted',
      );
      return this.#ctx.report(rec, state, { current, reason: decision.reason, message });
    }
    rec.intent = 'restart';
    rec.notBefore = now + decision.delayMs;
    this.#ctx.report(rec, failed ? agentv1.DeviceState.ERROR : agentv1.DeviceState.STOPPED, {
      current,
      reason: decision.reason,
      message: `${detail}; restart ${rec.crashes} in ${decision.delayMs} ms`,
    });
    this.#ctx.queue.scheduleAfter(rec.deviceId, decision.delayMs);
  }

  async #delete(rec: DeviceRecord, current: RuntimeDevice | undefined): Promise<void> {
    if (current === undefined && rec.observation?.state === agentv1.DeviceState.DELETED) {
      this.#ctx.forget(rec);
      return;
    }
    if (current === undefined && rec.observation === undefined) {
      // Removed before anything of it was made: say so, or the control plane would wait for a
      // deletion report that never comes. (A device merely unknown here is forgotten quietly.)
      if (rec.removeRequested)
        this.#ctx.report(rec, agentv1.DeviceState.DELETED, { containerId: '', reason: 'NEVER_CREATED' });
      this.#ctx.forget(rec);
      return;
    }
    this.#abortProbe(rec);
    rec.intent = undefined;
    this.#ctx.report(rec, agentv1.DeviceState.DELETING, { current });
    await this.#op(rec, 'remove', () => this.#runtime.remove(rec.deviceId, { keepData: false }));
    this.#ctx.report(rec, agentv1.DeviceState.DELETED, { containerId: '' });
    this.#ctx.forget(rec);
  }

  /** No desired state for this device yet: report what is there, change nothing. */
  async #observeOnly(rec: DeviceRecord, current: RuntimeDevice | undefined): Promise<void> {
    if (current === undefined) {
      if (rec.observation === undefined) this.#ctx.forget(rec);
      return;
    }
    rec.tenantId = current.tenantId;
    if (isLive(current)) return this.#trackBoot(rec, undefined, current);
    const o = observationOf(current, false);
    this.#ctx.report(rec, o.state, { current, reason: o.reason, message: o.message });
  }
}
