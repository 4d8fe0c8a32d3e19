import Docker from 'dockerode';
import type { ContainerRuntime } from './container-runtime.js';
import { type DockerRuntimeConfig, dockerRuntimeConfig } from './docker-config.js';
import { deviceFromInspect, runtimeEventFromEngine } from './docker-mapping.js';
import {
  DeviceNotFoundError,
  ImagePullError,
  RuntimeError,
  RuntimeUnavailableError,
  SpecRevisionConflictError,
} from './errors.js';
import { LABEL_DEVICE_ID, LABEL_MANAGED, LABEL_SCOPE, LABEL_TENANT_ID, scopeFilters } from './labels.js';
import { LABEL_NETWORK, phoneNetworkCreateOptions, phoneNetworkFor } from './phone-network.js';
import { containerName, redroidCreateOptions, redroidVolumeOptions, volumeName } from './redroid-options.js';
import { validateDeviceSpec } from './spec.js';
import type { DeviceSpec, RemoveOptions, RuntimeDevice, RuntimeEvent, StopOptions } from './types.js';

export interface DockerRuntimeOptions {
  /** Engine socket; ignored when `docker` is given. */
  readonly socketPath?: string;
  /** A ready client, e.g. for a TCP or TLS engine. */
  readonly docker?: Docker;
  readonly config?: Partial<DockerRuntimeConfig>;
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/** Engine errors other than the expected HTTP statuses become one typed error naming the call. */
function engineError(operation: string, subject: string, err: unknown): RuntimeError {
  const detail = err instanceof Error ? err.message : String(err);
  return new RuntimeUnavailableError(`docker ${operation} ${subject} failed: ${detail}`, { cause: err });
}

/** Redroid phones as containers on a Docker Engine API (Docker, or podman's compatible service). */
export class DockerRuntime implements ContainerRuntime {
  readonly name = 'docker';
  readonly config: DockerRuntimeConfig;
  readonly #docker: Docker;
  /** Network work (create, join, prune) serialised per network name. */
  readonly #networkLocks = new Map<string, Promise<unknown>>();

  constructor(options: DockerRuntimeOptions = {}) {
    this.config = dockerRuntimeConfig(options.config);
    this.#docker = options.docker ?? new Docker({ socketPath: options.socketPath ?? '/var/run/docker.sock' });
  }

  async create(spec: DeviceSpec): Promise<RuntimeDevice> {
    validateDeviceSpec(spec);
    const existing = await this.inspect(spec.deviceId);
    if (existing !== undefined) return this.#adopt(existing, spec);
    await this.#ensureImage(this.config.imageOverride ?? spec.image);
    await this.#ensureVolume(spec);
    try {
      // Under the network's lock, so a prune of an empty network cannot slip in between.
      await this.#withNetwork(phoneNetworkFor(this.config, spec.tenantId).name, async () => {
        await this.#createNetworkIfMissing(spec.tenantId);
        await this.#docker.createContainer(redroidCreateOptions(spec, this.config));
      });
    } catch (err) {
      // A concurrent create for the same device may have won the name (Docker answers 409, podman
      // 500 "name is already in use"): adopt what it made; anything else is the engine's failure.
      const winner = await this.inspect(spec.deviceId);
      if (winner === undefined) throw engineError('create container for', spec.deviceId, err);
      return this.#adopt(winner, spec);
    }
    const created = await this.inspect(spec.deviceId);
    if (created === undefined) {
      throw new RuntimeError(
        `container ${containerName(this.config, spec.deviceId)} vanished right after create`,
      );
    }
    return this.#adopt(created, spec);
  }

  async start(deviceId: string): Promise<void> {
    await this.#containerCall(deviceId, 'start', (c) => c.start());
  }

  async stop(deviceId: string, options: StopOptions): Promise<void> {
    const t = Math.max(0, Math.ceil(options.timeoutMs / 1000));
    await this.#containerCall(deviceId, 'stop', (c) => c.stop({ t }));
  }

  async remove(deviceId: string, options: RemoveOptions): Promise<void> {
    const existing = await this.inspect(deviceId);
    if (existing !== undefined) {
      try {
        await this.#container(deviceId).remove({ force: true, v: false });
      } catch (err) {
        const code = statusCode(err);
        if (code !== 404 && code !== 409) throw engineError('remove', deviceId, err);
      }
      if (this.config.tenantNetworks) await this.#pruneNetwork(existing.tenantId);
    }
    if (options.keepData) return;
    const volume = this.#docker.getVolume(volumeName(this.config, deviceId));
    try {
      const info = await volume.inspect();
      if (info.Labels?.[LABEL_SCOPE] !== this.config.scope) return;
      await volume.remove();
    } catch (err) {
      if (statusCode(err) !== 404) throw engineError('remove volume of', deviceId, err);
    }
  }

  async inspect(deviceId: string): Promise<RuntimeDevice | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.#container(deviceId).inspect();
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw engineError('inspect', deviceId, err);
    }
    const labels = info.Config.Labels ?? {};
    const ours =
      labels[LABEL_MANAGED] === 'true' &&
      labels[LABEL_SCOPE] === this.config.scope &&
      labels[LABEL_DEVICE_ID] === deviceId;
    return ours ? deviceFromInspect(info, this.config) : undefined;
  }

  async list(): Promise<RuntimeDevice[]> {
    const summaries = await this.#scopeContainers();
    const ids = new Set<string>();
    for (const s of summaries) {
      const id = s.Labels?.[LABEL_DEVICE_ID];
      if (id !== undefined && s.Labels?.[LABEL_SCOPE] === this.config.scope) ids.add(id);
    }
    // Inspect by name: the name is unique per device id, so one entry per device even if an engine
    // listed a container twice or a half-removed one lingers.
    const devices = await Promise.all([...ids].map((id) => this.inspect(id)));
    return devices
      .filter((d): d is RuntimeDevice => d !== undefined)
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
  }

  events(signal: AbortSignal): AsyncIterable<RuntimeEvent> {
    // Asked from the moment of the call (the engine replays from `since`), not from the first next().
    return this.#eventStream(signal, Math.floor(Date.now() / 1000));
  }

  async *#eventStream(signal: AbortSignal, since: number): AsyncGenerator<RuntimeEvent> {
    if (signal.aborted) return;
    const scope = { [LABEL_MANAGED]: 'true', [LABEL_SCOPE]: this.config.scope };
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.getEvents({
        since,
        filters: { type: ['container'], label: scopeFilters(this.config.scope) },
      });
    } catch (err) {
      throw engineError('events', `scope ${this.config.scope}`, err);
    }
    const readable = stream as NodeJS.ReadableStream & { destroy(): void };
    const onAbort = (): void => readable.destroy();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort(); // aborted while the request was in flight
    let buffer = '';
    try {
      for await (const chunk of readable) {
        buffer += chunk.toString();
        let newline = buffer.indexOf('\n');
        while (newline >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          newline = buffer.indexOf('\n');
          if (line === '') continue;
          const event = runtimeEventFromEngine(JSON.parse(line), scope);
          if (event !== undefined) yield event;
        }
      }
    } catch (err) {
      if (!signal.aborted) throw engineError('events', `scope ${this.config.scope}`, err);
    } finally {
      signal.removeEventListener('abort', onAbort);
      readable.destroy();
    }
  }

  async close(): Promise<void> {
    // Phones are containers owned by the engine: they keep running while the agent is away.
  }

  #container(deviceId: string): Docker.Container {
    return this.#docker.getContainer(containerName(this.config, deviceId));
  }

  async #containerCall(deviceId: string, operation: string, call: (c: Docker.Container) => Promise<unknown>) {
    if ((await this.inspect(deviceId)) === undefined) throw new DeviceNotFoundError(deviceId);
    try {
      await call(this.#container(deviceId));
    } catch (err) {
      const code = statusCode(err);
      if (code === 304) return; // already in the asked-for state
      if (code === 404) throw new DeviceNotFoundError(deviceId);
      throw engineError(operation, deviceId, err);
    }
  }

  #adopt(existing: RuntimeDevice, spec: DeviceSpec): RuntimeDevice {
    if (existing.specRevision !== spec.specRevision) {
      throw new SpecRevisionConflictError(spec.deviceId, existing.specRevision, spec.specRevision);
    }
    return existing;
  }

  /**
   * Removes the scope's tenant networks that no phone of the scope uses any more (the agent calls
   * it periodically, to clean up after phones removed while it was away). Returns the names removed.
   */
  async pruneNetworks(): Promise<string[]> {
    if (!this.config.tenantNetworks) return [];
    let networks: Docker.NetworkInspectInfo[];
    try {
      networks = await this.#docker.listNetworks({
        filters: { label: [...scopeFilters(this.config.scope), `${LABEL_NETWORK}=tenant`] },
      });
    } catch (err) {
      throw engineError('list networks of', `scope ${this.config.scope}`, err);
    }
    // One listing for the sweep: a network whose tenant still has a container is skipped without
    // the lock; the few left are checked again under it (a create may have just joined them).
    const inUse = tenantsOf(await this.#scopeContainers());
    const removed: string[] = [];
    for (const n of networks) {
      const tenant = n.Labels?.[LABEL_TENANT_ID];
      if (n.Labels?.[LABEL_SCOPE] !== this.config.scope || tenant === undefined || inUse.has(tenant))
        continue;
      if (await this.#pruneNetwork(tenant)) removed.push(n.Name);
    }
    return removed;
  }

  /** Removes the tenant's network when none of the scope's containers (in any state) is on it. */
  async #pruneNetwork(tenantId: string): Promise<boolean> {
    const name = phoneNetworkFor(this.config, tenantId).name;
    return this.#withNetwork(name, async () => {
      if (tenantsOf(await this.#scopeContainers()).has(tenantId)) return false;
      try {
        await this.#docker.getNetwork(name).remove();
        return true;
      } catch {
        // Gone already, or still used by something outside the scope: the engine keeps it.
        return false;
      }
    });
  }

  /** Every container of the scope, in any state, as the engine lists them. */
  async #scopeContainers(): Promise<Docker.ContainerInfo[]> {
    try {
      return await this.#docker.listContainers({
        all: true,
        filters: { label: scopeFilters(this.config.scope) },
      });
    } catch (err) {
      throw engineError('list', `scope ${this.config.scope}`, err);
    }
  }

  #withNetwork<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#networkLocks.get(name) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.#networkLocks.set(name, settled);
    void settled.then(() => {
      if (this.#networkLocks.get(name) === settled) this.#networkLocks.delete(name);
    });
    return next;
  }

  async #createNetworkIfMissing(tenantId: string): Promise<void> {
    const options = phoneNetworkCreateOptions(this.config, tenantId);
    const name = options.Name;
    try {
      await this.#docker.getNetwork(name).inspect();
      return;
    } catch (err) {
      if (statusCode(err) !== 404) throw engineError('inspect network', name, err);
    }
    try {
      await this.#docker.createNetwork(options);
    } catch (err) {
      // Another agent process (or test run) made it first: Docker answers 409, podman 500.
      const exists = await this.#docker
        .getNetwork(name)
        .inspect()
        .then(
          () => true,
          () => false,
        );
      if (!exists) throw engineError('create network', name, err);
    }
  }

  async #ensureImage(image: string): Promise<void> {
    const policy = this.config.pullPolicy;
    if (policy !== 'always') {
      try {
        await this.#docker.getImage(image).inspect();
        return;
      } catch (err) {
        if (statusCode(err) !== 404) throw engineError('inspect image', image, err);
        if (policy === 'never') throw new ImagePullError(image, 'not present and pullPolicy is never');
      }
    }
    await this.#pull(image);
  }

  async #pull(image: string): Promise<void> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.#docker.pull(image);
    } catch (err) {
      throw new ImagePullError(image, err instanceof Error ? err.message : String(err));
    }
    // podman answers 200 and reports a failed pull inside the progress stream: check every message.
    const failure = await new Promise<string | undefined>((resolve) => {
      let error: string | undefined;
      this.#docker.modem.followProgress(
        stream,
        (err) => resolve(err ? err.message : error),
        (event: { error?: string; errorDetail?: { message?: string } }) => {
          error ??= event.error ?? event.errorDetail?.message;
        },
      );
    });
    if (failure !== undefined) throw new ImagePullError(image, failure);
  }

  async #ensureVolume(spec: DeviceSpec): Promise<void> {
    const options = redroidVolumeOptions(spec, this.config);
    try {
      await this.#docker.getVolume(options.Name).inspect();
      return; // kept from an earlier container of this device: its data is the point
    } catch (err) {
      if (statusCode(err) !== 404) throw engineError('inspect volume', options.Name, err);
    }
    try {
      await this.#docker.createVolume(options);
    } catch (err) {
      // A concurrent create made it first: Docker answers 409, podman 500 "volume already exists".
      const exists = await this.#docker
        .getVolume(options.Name)
        .inspect()
        .then(
          () => true,
          () => false,
        );
      if (!exists) throw engineError('create volume', options.Name, err);
    }
  }
}

export function createDockerRuntime(options: DockerRuntimeOptions = {}): DockerRuntime {
  return new DockerRuntime(options);
}

/** The tenants that have a container among these. */
function tenantsOf(containers: readonly Docker.ContainerInfo[]): Set<string> {
  const tenants = new Set<string>();
  for (const c of containers) {
    const tenant = c.Labels?.[LABEL_TENANT_ID];
    if (tenant !== undefined) tenants.add(tenant);
  }
  return tenants;
}
