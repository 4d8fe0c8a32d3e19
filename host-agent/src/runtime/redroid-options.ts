import type Docker from 'dockerode';
import type { DockerRuntimeConfig } from './docker-config.js';
import { deviceLabels, volumeLabels } from './labels.js';
import { phoneNetworkFor } from './phone-network.js';
import type { DeviceSpec } from './types.js';

/** Redroid's adbd listens here inside the container. */
export const ADB_CONTAINER_PORT = 5555;
export const ADB_PORT_KEY = `${ADB_CONTAINER_PORT}/tcp`;
/** Android's data partition; the only state a phone keeps across container re-creation. */
export const DATA_MOUNT = '/data';

export function containerName(config: DockerRuntimeConfig, deviceId: string): string {
  return config.namePrefix + deviceId;
}

export function volumeName(config: DockerRuntimeConfig, deviceId: string): string {
  return `${config.namePrefix}${deviceId}-data`;
}

/**
 * Redroid's boot arguments. Redroid's init reads them from its argv (the container command):
 * `androidboot.*` configure the virtual hardware, `ro.*` override system properties.
 */
export function redroidBootArgs(spec: DeviceSpec, config: DockerRuntimeConfig): string[] {
  const args = [
    `androidboot.redroid_width=${spec.screen.width}`,
    `androidboot.redroid_height=${spec.screen.height}`,
    `androidboot.redroid_dpi=${spec.screen.dpi}`,
    `androidboot.redroid_fps=${spec.screen.fps}`,
    `androidboot.redroid_gpu_mode=${spec.gpuMode}`,
  ];
  if (config.gpuNode !== undefined) args.push(`androidboot.redroid_gpu_node=${config.gpuNode}`);
  if (config.useMemfd) args.push('androidboot.use_memfd=1');
  if (config.dns.length > 0) {
    args.push(`androidboot.redroid_net_ndns=${config.dns.length}`);
    for (const [i, server] of config.dns.entries())
      args.push(`androidboot.redroid_net_dns${i + 1}=${server}`);
  }
  // Sorted so that equal specs give byte-equal commands.
  for (const key of Object.keys(spec.properties).sort()) args.push(`${key}=${spec.properties[key]}`);
  return args;
}

/**
 * The Docker Engine create call for one Redroid phone. Pure: everything production sends is
 * decided here, so a unit test can assert it field by field.
 */
export function redroidCreateOptions(
  spec: DeviceSpec,
  config: DockerRuntimeConfig,
): Docker.ContainerCreateOptions {
  const published = config.adbAccess === 'published';
  const network = phoneNetworkFor(config, spec.tenantId).name;
  const binds = [`${volumeName(config, spec.deviceId)}:${DATA_MOUNT}`, ...config.binds];
  return {
    name: containerName(config, spec.deviceId),
    Hostname: spec.deviceId,
    Image: config.imageOverride ?? spec.image,
    Cmd: config.commandOverride !== undefined ? [...config.commandOverride] : redroidBootArgs(spec, config),
    Labels: deviceLabels(spec, config.scope),
    ExposedPorts: { [ADB_PORT_KEY]: {} },
    // Redroid needs no TTY or stdin; logs go to the engine's log driver.
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    HostConfig: {
      // Android's init mounts binderfs, cgroups and sets sysctls: Redroid documents --privileged.
      Privileged: true,
      // No Init: Redroid's entrypoint is Android's init, PID 1 in every documented run (it reaps
      // its children and handles reboot and SIGTERM itself); tini in front of it is untested ground.
      // The agent's reconciler restarts phones by policy (with backoff and accounting): never the engine.
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      Memory: spec.memoryMib * 1024 * 1024,
      // No swap beyond the memory limit: a swapping phone is worse than an OOM-killed one.
      MemorySwap: spec.memoryMib * 1024 * 1024,
      NanoCpus: spec.vcpuMillicores * 1_000_000,
      Binds: binds,
      Devices: config.devices.map((d) => ({
        PathOnHost: d.hostPath,
        PathInContainer: d.containerPath,
        CgroupPermissions: 'rwm',
      })),
      NetworkMode: network,
      PortBindings: published ? { [ADB_PORT_KEY]: [{ HostIp: config.adbBindHost, HostPort: '' }] } : {},
      PublishAllPorts: false,
    },
    NetworkingConfig: { EndpointsConfig: { [network]: {} } },
  };
}

/** The named volume holding /data; outlives the container, removed only when the device is deleted. */
export function redroidVolumeOptions(
  spec: DeviceSpec,
  config: DockerRuntimeConfig,
): { Name: string; Driver: string; DriverOpts: Record<string, string>; Labels: Record<string, string> } {
  return {
    Name: volumeName(config, spec.deviceId),
    Driver: 'local',
    DriverOpts: config.enforceStorageQuota ? { size: `${spec.storageGib}g` } : {},
    // No spec revision: the volume outlives the container it was made with.
    Labels: volumeLabels(spec, config.scope),
  };
}
