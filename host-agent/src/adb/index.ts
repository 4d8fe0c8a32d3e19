// The host agent's ADB client: one connection per device straight to its adbd, the operations the
// agent needs (shell, install, screenshot, input, files, logcat, props, reboot, boot wait) and the
// executor that runs control-plane Commands with them.
export type { OperationOptions } from './abort.js';
export { AdbPool, type AdbPoolOptions } from './adb-pool.js';
export {
  type ArtifactRef,
  downloadArtifact,
  type FetchFunction,
  type LocalArtifact,
  uploadArtifact,
} from './artifacts.js';
export { AdbCommandExecutor, type AdbCommandExecutorOptions } from './command-executor.js';
export { type AdbEndpoint, connectAdb, endpointKey } from './connect.js';
export { MemoryCredentialStore } from './credential-store.js';
export { DeviceAdb, type DeviceAdbOptions } from './device-adb.js';
export {
  AdbError,
  AdbFileError,
  AdbInstallError,
  AdbInvalidArgumentError,
  AdbSizeLimitError,
  AdbUnavailableError,
  ArtifactTransferError,
} from './errors.js';
export {
  adbPublicKeyLine,
  FileCredentialStore,
  type FileCredentialStoreOptions,
} from './file-credential-store.js';
export { escapeInputText, type InputAction, inputCommand } from './input.js';
export type { ApkSource, InstallOptions, InstallResult } from './install.js';
export { parseInstallOutput } from './install-output.js';
export type { BootProbe, CommandExecutor, CommandResultInit, ExecutorDevice } from './interfaces.js';
export type { LogcatDump, LogcatDumpOptions } from './logcat.js';
export { pngDimensions, type Screenshot } from './screen.js';
export { DEFAULT_MAX_OUTPUT_BYTES, type ShellOptions, type ShellResult } from './shell.js';
export type { ByteSource } from './sync-ops.js';
export { type AdbTcpConnection, connectAdbTcp } from './tcp-transport.js';
