// Debian's adb for interop tests: one private adb server per suite (DebianAdb: its own socket and
// HOME), plus what these suites also need: a long-running command and waiting for a device state.
import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from '@cphone/proto/testing';
import { DEBIAN_ADB, DebianAdb } from '../adb-tunnel/debian-adb.js';

export const ADB = DEBIAN_ADB;

export class AdbHost extends DebianAdb {
  /** A long-running adb command (`logcat` that follows), to be killed by the test. */
  spawn(args: string[]): ChildProcess {
    return spawn(ADB, ['-L', this.socket, ...args], {
      env: { ...process.env, HOME: this.home, ADB_VENDOR_KEYS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  waitForState(serial: string, wanted: string, timeoutMs = 10_000): Promise<string> {
    return waitFor(
      `${serial} to be ${wanted}`,
      () => this.state(serial),
      (state) => state === wanted,
      { timeoutMs, intervalMs: 100 },
    );
  }
}
