// Test and benchmark support: Debian's adb (the real host side of ADB) with a private server, to
// drive phones through ADB tunnels as a user's `adb` would. The server listens on an abstract Unix
// socket named here (a name nobody else can hold, where a TCP port picked free beforehand could be
// taken before adb binds it), with its own HOME, so keys and devices never leak between runs.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DEBIAN_ADB = '/usr/bin/adb';

export interface AdbRun {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export class DebianAdb {
  readonly home = mkdtempSync(join(tmpdir(), 'cphone-adb-'));
  readonly socket = `localabstract:cphone-adb-${randomUUID()}`;

  run(args: readonly string[], { timeoutMs = 60_000 } = {}): Promise<AdbRun> {
    return new Promise((resolve) => {
      execFile(
        DEBIAN_ADB,
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

  /** stdout of a command that must succeed. */
  async text(args: readonly string[], options?: { timeoutMs?: number }): Promise<string> {
    const result = await this.run(args, options);
    if (result.code !== 0) throw new Error(`adb ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result.stdout.toString();
  }

  /** The state `adb devices` shows for a serial ("device", "offline" …), or "absent". */
  async state(serial: string): Promise<string> {
    const line = (await this.text(['devices'])).split('\n').find((l) => l.startsWith(`${serial}\t`));
    return line?.split('\t')[1]?.trim() ?? 'absent';
  }

  async dispose(): Promise<void> {
    await this.run(['kill-server']);
    rmSync(this.home, { recursive: true, force: true });
  }
}
