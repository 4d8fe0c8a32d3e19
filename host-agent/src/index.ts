// @cphone/host-agent: the daemon that runs phones on one host, and its parts.
export {
  AdbCommandExecutor,
  AdbPool,
  type CommandExecutor,
  type CommandResultInit,
  connectAdbTcp,
  DeviceAdb,
  type ExecutorDevice,
  FileCredentialStore,
} from './adb/index.js';
export { type BridgeOptions, type BridgeSide, bridgeWebSocket } from './adb-tunnel/index.js';
export { AGENT_VERSION, type Agent, type AgentDeps, startAgent } from './agent.js';
export {
  type AgentConfig,
  type CapacityOverrides,
  ConfigError,
  defaultArch,
  describeConfig,
  loadConfig,
  type RuntimeKind,
} from './config.js';
// `cphone-agent doctor` and the inotify limits it asks for (deploy/host/install.sh writes the same).
export { type CheckResult, type CheckStatus, doctorMain, inotifyNeeded } from './doctor/index.js';
export { HostStats } from './host-stats/index.js';
export { createLogger } from './logger.js';
export { createMetrics, type Metrics } from './metrics.js';
export {
  type BootProbe as ReconcilerBootProbe,
  DesiredStore,
  portOpenBootProbe,
  Reconciler,
  type ReconcilerOptions,
} from './reconciler/index.js';
export * from './runtime/index.js';
export {
  type CaptureSettings,
  DEFAULT_CAPTURE,
  type FrameInfo,
  type H264Profile,
  type MediaSink,
  type RtpSourceConfig,
  SCRCPY_SERVER_SHA256,
  SCRCPY_SERVER_VERSION,
  type ScrcpyServerBinary,
  ScrcpyServerIntegrityError,
  type ScreenDevice,
  ScreenIngest,
  type ScreenIngestOptions,
  startScreenIngest,
  type VideoSize,
} from './screen/index.js';
export { Backoff, type BackoffOptions } from './session/backoff.js';
export { Session, type SessionHooks, type SessionLink, type SessionOptions } from './session/session.js';
export { type SpooledSample, UsageSpool } from './spool/index.js';
export { startVirtualPhone, type VirtualPhone, type VirtualPhoneOptions } from './virtual-phone/index.js';
