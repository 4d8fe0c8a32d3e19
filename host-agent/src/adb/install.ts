import { randomBytes } from 'node:crypto';
import ApkReader from '@devicefarmer/adbkit-apkreader';
import type { Adb } from '@yume-chan/adb';
import { AdbInstallError, AdbInvalidArgumentError } from './errors.js';
import { parseInstallOutput } from './install-output.js';
import { shellQuote } from './output.js';
import { runShell } from './shell.js';
import { type ByteSource, pushFile } from './sync-ops.js';

export interface InstallOptions {
  /** pm install -g: grant every runtime permission. */
  grantPermissions?: boolean | undefined;
  /** pm install -r: replace an installed app (default true, as Android 10's pm does anyway). */
  replace?: boolean | undefined;
  /** pm install -d: allow a version downgrade. */
  allowDowngrade?: boolean | undefined;
  /** Names the staging file (/data/local/tmp/cphone-<sha256>-<random>.apk). */
  sha256?: string | undefined;
  signal?: AbortSignal | undefined;
  useShellV2: boolean;
}

export interface InstallResult {
  /** Read from the APK's manifest when the agent holds the bytes (a path or a buffer). */
  packageName?: string;
  versionCode?: number;
  versionName?: string;
}

/** An APK on the agent's disk, in memory, or arriving as a stream (then without manifest data). */
export type ApkSource = { path: string } | { bytes: Uint8Array } | { stream: ByteSource };

const PM_TIMEOUT_MS = 5 * 60_000;

/**
 * Pushes the APK to /data/local/tmp over sync (streamed, so memory stays flat for large APKs),
 * runs `pm install`, removes the staging file and throws AdbInstallError on `Failure [...]`.
 */
export async function installApk(
  adb: Adb,
  source: ApkSource,
  options: InstallOptions,
): Promise<InstallResult> {
  if (options.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(options.sha256)) {
    throw new AdbInvalidArgumentError('sha256', options.sha256, 'must be 64 lowercase hex characters');
  }
  const manifest = await readManifest(source);
  // The random part keeps two concurrent installs of one APK from removing each other's file.
  const staging = `/data/local/tmp/cphone-${options.sha256 ?? 'apk'}-${randomBytes(6).toString('hex')}.apk`;
  const bytes =
    'bytes' in source ? source.bytes : 'stream' in source ? source.stream : await openFileSource(source.path);
  await pushFile(adb, bytes, staging, { mode: 0o644, signal: options.signal });
  try {
    const flags = [
      options.replace === false ? '' : '-r',
      options.grantPermissions ? '-g' : '',
      options.allowDowngrade ? '-d' : '',
    ].filter(Boolean);
    const result = await runShell(adb, `pm install ${[...flags, shellQuote(staging)].join(' ')}`, {
      useShellV2: options.useShellV2,
      timeoutMs: PM_TIMEOUT_MS,
      maxOutputBytes: 64 * 1024,
      signal: options.signal,
    });
    const text = `${Buffer.from(result.stdout).toString('utf8')}\n${Buffer.from(result.stderr).toString('utf8')}`;
    const outcome = result.timedOut
      ? {
          ok: false as const,
          failureReason: 'INSTALL_FAILED_TIMEOUT',
          detail: `pm ran over ${PM_TIMEOUT_MS} ms`,
        }
      : parseInstallOutput(text, result.exitCode);
    if (!outcome.ok) throw new AdbInstallError(outcome.failureReason, outcome.detail);
  } finally {
    await runShell(adb, `rm -f ${shellQuote(staging)}`, {
      useShellV2: options.useShellV2,
      timeoutMs: 10_000,
    }).catch(() => {});
  }
  return manifest ?? {};
}

async function openFileSource(path: string): Promise<ByteSource> {
  const { createReadStream } = await import('node:fs');
  return createReadStream(path, { highWaterMark: 256 * 1024 });
}

/** The manifest, when the bytes are at hand; an unreadable manifest is left for pm to judge. */
async function readManifest(source: ApkSource): Promise<Required<InstallResult> | undefined> {
  if ('stream' in source) return undefined;
  try {
    const reader = await ApkReader.open('path' in source ? source.path : Buffer.from(source.bytes));
    const manifest = await reader.readManifest();
    if (!manifest.package) return undefined;
    return {
      packageName: manifest.package,
      versionCode: Number(manifest.versionCode ?? 0),
      versionName: String(manifest.versionName ?? ''),
    };
  } catch {
    return undefined;
  }
}
