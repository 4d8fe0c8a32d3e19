// Pure mapping from Docker Engine answers (Docker or podman's compat API) to runtime types.
import type Docker from 'dockerode';
import type { DockerRuntimeConfig } from './docker-config.js';
import { LABEL_DEVICE_ID, LABEL_SPEC_REVISION, LABEL_TENANT_ID } from './labels.js';
import { phoneNetworkFor } from './phone-network.js';
import { ADB_CONTAINER_PORT, ADB_PORT_KEY } from './redroid-options.js';
import type {
  AdbEndpoint,
  DeviceState,
  PhoneNetwork,
  RuntimeDevice,
  RuntimeEvent,
  RuntimeEventType,
} from './types.js';

const STATE: Readonly<Record<string, DeviceState>> = {
  created: 'created',
  configured: 'created', // podman, before the first start
  running: 'running',
  paused: 'running', // the processes still exist; nothing in cphone pauses phones
  restarting: 'restarting',
  removing: 'removing',
  exited: 'exited',
  stopped: 'exited', // podman
  dead: 'exited',
};

/** Both engines report "never" as Go's zero time. */
function engineTime(value: string | undefined): Date | undefined {
  if (value === undefined || value === '' || value.startsWith('0001-01-01')) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function phoneNetwork(
  info: Docker.ContainerInspectInfo,
  config: DockerRuntimeConfig,
  tenantId: string,
): PhoneNetwork | undefined {
  const { name, bridge } = phoneNetworkFor(config, tenantId);
  // podman leaves the top-level IPAddress empty on user-defined networks: read the network's entry.
  const address = info.NetworkSettings.Networks[name]?.IPAddress;
  return address ? { name, bridge, address } : undefined;
}

function adbEndpoint(
  info: Docker.ContainerInspectInfo,
  config: DockerRuntimeConfig,
  network: PhoneNetwork | undefined,
): AdbEndpoint | undefined {
  if (config.adbAccess === 'bridge') {
    return network ? { host: network.address, port: ADB_CONTAINER_PORT } : undefined;
  }
  const binding = info.NetworkSettings.Ports?.[ADB_PORT_KEY]?.[0];
  const port = Number(binding?.HostPort);
  if (binding === undefined || !Number.isInteger(port) || port <= 0) return undefined;
  const host = binding.HostIp === '' || binding.HostIp === '0.0.0.0' ? config.adbBindHost : binding.HostIp;
  return { host, port };
}

export function deviceFromInspect(
  info: Docker.ContainerInspectInfo,
  config: DockerRuntimeConfig,
): RuntimeDevice {
  const labels = info.Config.Labels ?? {};
  const state = STATE[info.State.Status] ?? 'exited';
  const startedAt = engineTime(info.State.StartedAt);
  const finishedAt = engineTime(info.State.FinishedAt);
  const tenantId = labels[LABEL_TENANT_ID] ?? '';
  const network = state === 'running' ? phoneNetwork(info, config, tenantId) : undefined;
  const adb = state === 'running' ? adbEndpoint(info, config, network) : undefined;
  return {
    deviceId: labels[LABEL_DEVICE_ID] ?? '',
    tenantId,
    specRevision: Number(labels[LABEL_SPEC_REVISION] ?? -1),
    image: info.Config.Image,
    state,
    runtimeId: info.Id,
    labels: { ...labels },
    ...(finishedAt !== undefined && state !== 'running' ? { exitCode: info.State.ExitCode } : {}),
    ...(startedAt !== undefined ? { startedAt } : {}),
    ...(finishedAt !== undefined ? { finishedAt } : {}),
    ...(adb !== undefined ? { adb } : {}),
    ...(network !== undefined ? { network } : {}),
  };
}

const EVENT: Readonly<Record<string, RuntimeEventType>> = {
  create: 'create',
  start: 'start',
  die: 'die',
  stop: 'stop',
  destroy: 'remove', // Docker
  remove: 'remove', // podman
};

interface EngineEvent {
  Type?: string;
  Action?: string;
  status?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** One engine event (a JSON line) as a runtime event, or undefined when it is not one of ours. */
export function runtimeEventFromEngine(
  raw: unknown,
  scopeLabels: Record<string, string>,
): RuntimeEvent | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const event = raw as EngineEvent;
  if (event.Type !== undefined && event.Type !== 'container') return undefined;
  const type = EVENT[event.Action ?? event.status ?? ''];
  const attributes = event.Actor?.Attributes ?? {};
  const deviceId = attributes[LABEL_DEVICE_ID];
  if (type === undefined || deviceId === undefined) return undefined;
  // The engine's label filter is honoured by Docker; check again so podman versions that ignore it agree.
  for (const [key, value] of Object.entries(scopeLabels)) if (attributes[key] !== value) return undefined;
  const at = event.timeNano
    ? new Date(event.timeNano / 1e6)
    : new Date((event.time ?? Date.now() / 1000) * 1000);
  // Docker names the exit code `exitCode`; podman `containerExitCode`.
  const code = Number(attributes['exitCode'] ?? attributes['containerExitCode']);
  return { type, deviceId, at, ...(type === 'die' && Number.isInteger(code) ? { exitCode: code } : {}) };
}
