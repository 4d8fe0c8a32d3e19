// The ContainerRuntime of bench/agent-overhead.ts: the sim runtime's idea (virtual phones instead of
// Redroid containers) with the phones moved out of the agent's process. The phones run in the
// bench's phone process (_agent-overhead-phones.ts), which this runtime asks over a small HTTP API
// to start and stop a phone; the runtime keeps only its records in memory. So what the bench
// measures in the agent process is the agent's own cost (ADB connections, heartbeats, spool,
// reconcile), not the emulated Android behind each phone, as with Redroid, whose phones run in
// containers outside the agent.
import { randomUUID } from 'node:crypto';
import { Agent as HttpAgent, request } from 'node:http';
import {
  type ContainerRuntime,
  DeviceNotFoundError,
  type DeviceSpec,
  type RemoveOptions,
  type RuntimeDevice,
  RuntimeError,
  type RuntimeEvent,
  type RuntimeEventType,
  RuntimeUnavailableError,
  SpecRevisionConflictError,
  type StopOptions,
  validateDeviceSpec,
} from '@cphone/host-agent';
import { deviceLabels, EventHub } from '@cphone/host-agent/testing';
import type { PhoneStartRequest } from './_agent-overhead-phones.js';

export interface RemotePhoneRuntimeOptions {
  /** Base URL of the phone process's control API, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** Passed to each phone: how long it pretends to boot. Default 0. */
  readonly bootDelayMs?: number;
  /** Label scope. Default `bench`. */
  readonly scope?: string;
}

interface PhoneRecord {
  readonly spec: DeviceSpec;
  readonly runtimeId: string;
  state: 'created' | 'running' | 'exited';
  port?: number;
  startedAt?: Date;
  finishedAt?: Date;
  exitCode?: number;
}

/** Phones in another process, driven over HTTP. Records live in memory: one agent run only. */
export class RemotePhoneRuntime implements ContainerRuntime {
  readonly name = 'sim';
  readonly #url: URL;
  readonly #bootDelayMs: number;
  readonly #scope: string;
  readonly #records = new Map<string, PhoneRecord>();
  readonly #hub = new EventHub();
  // A few kept-alive connections, as an engine client (dockerode) keeps to its socket.
  readonly #http = new HttpAgent({ keepAlive: true, maxSockets: 8 });

  constructor(options: RemotePhoneRuntimeOptions) {
    this.#url = new URL(options.url);
    this.#bootDelayMs = options.bootDelayMs ?? 0;
    this.#scope = options.scope ?? 'bench';
  }

  /** Checks that the phone process answers (and opens the HTTP client before any figure is taken). */
  async open(): Promise<void> {
    await this.#call('GET', '/ping');
  }

  async create(spec: DeviceSpec): Promise<RuntimeDevice> {
    validateDeviceSpec(spec);
    const existing = this.#records.get(spec.deviceId);
    if (existing !== undefined) {
      if (existing.spec.specRevision !== spec.specRevision) {
        throw new SpecRevisionConflictError(spec.deviceId, existing.spec.specRevision, spec.specRevision);
      }
      return this.#device(existing);
    }
    const record: PhoneRecord = { spec, runtimeId: randomUUID(), state: 'created' };
    this.#records.set(spec.deviceId, record);
    this.#emit('create', spec.deviceId);
    return this.#device(record);
  }

  async start(deviceId: string): Promise<void> {
    const record = this.#require(deviceId);
    if (record.state === 'running') return;
    const { spec } = record;
    const body: PhoneStartRequest = {
      deviceId,
      bootDelayMs: this.#bootDelayMs,
      screen: { width: spec.screen.width, height: spec.screen.height, dpi: spec.screen.dpi },
      ...(spec.properties['ro.product.model'] !== undefined
        ? { model: spec.properties['ro.product.model'] }
        : {}),
    };
    const { port } = JSON.parse(await this.#call('POST', '/start', body)) as { port: number };
    record.state = 'running';
    record.port = port;
    record.startedAt = new Date();
    this.#emit('start', deviceId);
  }

  async stop(deviceId: string, _options: StopOptions): Promise<void> {
    // A virtual phone closes at once: there is no guest to wait for, so the grace period is moot.
    const record = this.#require(deviceId);
    if (record.state !== 'running') return;
    await this.#stopPhone(record);
  }

  async remove(deviceId: string, _options: RemoveOptions): Promise<void> {
    const record = this.#records.get(deviceId);
    if (record === undefined) return;
    if (record.state === 'running') await this.#stopPhone(record);
    this.#records.delete(deviceId);
    this.#emit('remove', deviceId);
  }

  async inspect(deviceId: string): Promise<RuntimeDevice | undefined> {
    const record = this.#records.get(deviceId);
    return record === undefined ? undefined : this.#device(record);
  }

  async list(): Promise<RuntimeDevice[]> {
    return [...this.#records.values()].map((r) => this.#device(r));
  }

  events(signal: AbortSignal): AsyncIterable<RuntimeEvent> {
    return this.#hub.subscribe(signal);
  }

  /** Phones keep running in their process, as containers outlive a docker client. */
  async close(): Promise<void> {
    this.#http.destroy();
  }

  async #stopPhone(record: PhoneRecord): Promise<void> {
    await this.#call('POST', '/stop', { deviceId: record.spec.deviceId });
    record.state = 'exited';
    record.exitCode = 0;
    record.finishedAt = new Date();
    delete record.port;
    this.#emit('die', record.spec.deviceId, 0);
    this.#emit('stop', record.spec.deviceId);
  }

  #require(deviceId: string): PhoneRecord {
    const record = this.#records.get(deviceId);
    if (record === undefined) throw new DeviceNotFoundError(deviceId);
    return record;
  }

  #device(record: PhoneRecord): RuntimeDevice {
    const { spec } = record;
    return {
      deviceId: spec.deviceId,
      tenantId: spec.tenantId,
      specRevision: spec.specRevision,
      image: spec.image,
      state: record.state,
      runtimeId: record.runtimeId,
      labels: deviceLabels(spec, this.#scope),
      ...(record.exitCode !== undefined && record.state !== 'running' ? { exitCode: record.exitCode } : {}),
      ...(record.startedAt !== undefined ? { startedAt: record.startedAt } : {}),
      ...(record.finishedAt !== undefined ? { finishedAt: record.finishedAt } : {}),
      ...(record.port !== undefined ? { adb: { host: '127.0.0.1', port: record.port } } : {}),
    };
  }

  #emit(type: RuntimeEventType, deviceId: string, exitCode?: number): void {
    this.#hub.emit({ type, deviceId, at: new Date(), ...(exitCode !== undefined ? { exitCode } : {}) });
  }

  #call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<string> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.#url),
        {
          method,
          agent: this.#http,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300) {
              reject(
                new RuntimeError(`phone process: ${method} ${path} answered ${res.statusCode}: ${text}`),
              );
            } else resolve(text);
          });
        },
      );
      req.on('error', (err) =>
        reject(new RuntimeUnavailableError(`phone process unreachable: ${err.message}`, { cause: err })),
      );
      req.end(payload);
    });
  }
}
