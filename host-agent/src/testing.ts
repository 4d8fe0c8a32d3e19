// Test support for other packages' tests (tests/ and bench/): what they need from the host agent
// beyond its main export. This package's own tests import these modules directly.
// The agent's tunnel endpoint and token checks, to serve ADB tunnels without the sfu (CLI tests).

// Debian's adb with a private server (ADB tunnel tests and benchmarks).
export { type AdbRun, DEBIAN_ADB, DebianAdb } from './adb-tunnel/debian-adb.js';
export { AdbTunnels } from './adb-tunnel/index.js';
// What a ContainerRuntime written outside this package (bench's remote-phone runtime) builds on.
export { EventHub } from './runtime/event-queue.js';
// The sim runtime with a launcher of the test's own, to reach the virtual phones it starts.
export { createSimRuntime } from './runtime/index.js';
export { deviceLabels } from './runtime/labels.js';
export { volumeName } from './runtime/redroid-options.js';
export { launchVirtualPhone } from './runtime/sim-launcher.js';
export { bundleStandinPhone, connectEngine, engineSocket, removeScope } from './runtime/test-engine.js';
// The stand-in scrcpy server file virtual phones are pushed (checked by its own hash).
export { writeStandInServer } from './screen/testing.js';
export { StreamAuth } from './stream/stream-auth.js';
export type { VirtualPhone } from './virtual-phone/index.js';
// What the phone's scrcpy server was asked for (quality tests end to end).
export type { ScrcpyServerOptions } from './virtual-phone/scrcpy/server-options.js';
export {
  recordScrcpyServerStarts,
  type ScrcpyServerStart,
  type ScrcpyServerStarts,
} from './virtual-phone/scrcpy/server-starts.js';
