export type { ContainerRuntime } from './container-runtime.js';
export {
  type AdbAccess,
  DEFAULT_DOCKER_RUNTIME_CONFIG,
  type DeviceMapping,
  type DockerRuntimeConfig,
  dockerRuntimeConfig,
  type PullPolicy,
} from './docker-config.js';
export { createDockerRuntime, DockerRuntime, type DockerRuntimeOptions } from './docker-runtime.js';
export {
  DeviceNotFoundError,
  ImagePullError,
  InvalidSpecError,
  RuntimeError,
  RuntimeUnavailableError,
  SpecRevisionConflictError,
} from './errors.js';
export {
  LABEL_DEVICE_ID,
  LABEL_MANAGED,
  LABEL_SCOPE,
  LABEL_SPEC_REVISION,
  LABEL_TENANT_ID,
} from './labels.js';
export { redroidBootArgs, redroidCreateOptions, redroidVolumeOptions } from './redroid-options.js';
export type { LaunchedPhone, PhoneLauncher, VirtualPhoneLaunch } from './sim-launcher.js';
export { createSimRuntime, SimRuntime, type SimRuntimeOptions } from './sim-runtime.js';
export { validateDeviceSpec } from './spec.js';
export type {
  AdbEndpoint,
  DeviceSpec,
  DeviceState,
  GpuMode,
  RemoveOptions,
  RuntimeDevice,
  RuntimeEvent,
  RuntimeEventType,
  ScreenSpec,
  StopOptions,
} from './types.js';
