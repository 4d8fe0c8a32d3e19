// Debian's adb for interop tests: one private adb server per suite.
import * as assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@cphone/proto/testing';

export const ADB = '/usr/bin/adb';

export interface AdbResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/**
 * One private adb server per suite (its own socket and HOME, so keys and devices don't leak). The
 * server listens on an abstract Unix socket named by us: a name nobody else can hold, where a TCP
 * port picked free beforehand could be taken by another process before adb binds it.
 */
export class AdbHost {
  readonly home = mkdtempSync(join(tmpdir(), 'cphone-adb-'));
  readonly socket = `localabstract:cphone-adb-${randomUUID()}`;

  run(args: string[], { timeoutMs = 20_000 } = {}): Promise<AdbResult> {
    return new Promise((resolve) => {
      execFile(
        ADB,
        ['-L', this.socket, ...args],
        {
          env: { ...process.env, HOME: this.home, ADB_VENDOR_KEYS: '' },
          encoding: 'buffer',
          timeout: timeoutMs,
        },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout, stderr: stderr.toString() });
        },
      );
    });
  }

  /** A long-running adb command (`logcat` that follows), to be killed by the test. */
  spawn(args: string[]): ChildProcess {
    return spawn(ADB, ['-L', this.socket, ...args], {
      env: { ...process.env, HOME: this.home, ADB_VENDOR_KEYS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  async text(args: string[]): Promise<string> {
    const result = await this.run(args);
    assert.equal(result.code, 0, `adb ${args.join(' ')} failed: ${result.stderr}`);
    return result.stdout.toString();
  }

  async state(serial: string): Promise<string> {
    const out = await this.text(['devices']);
    const line = out.split('\n').find((l) => l.startsWith(`${serial}\t`));
    return line?.split('\t')[1]?.trim() ?? 'absent';
  }

  waitForState(serial: string, wanted: string, timeoutMs = 10_000): Promise<string> {
    return waitFor(
      `${serial} to be ${wanted}`,
      () => this.state(serial),
      (state) => state === wanted,
      { timeoutMs, intervalMs: 100 },
    );
  }

  async dispose(): Promise<void> {
    await this.run(['kill-server']);
    rmSync(this.home, { recursive: true, force: true });
  }
}
