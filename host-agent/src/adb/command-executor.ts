import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Duration, durationMs, timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import { type Logger, pino } from 'pino';
import type { AdbPool } from './adb-pool.js';
import {
  checkArtifactRef,
  checkHttpUrl,
  downloadArtifact,
  type FetchFunction,
  uploadArtifact,
} from './artifacts.js';
import { InputUnsupportedError, inputActions } from './command-input.js';
import type { DeviceAdb } from './device-adb.js';
import {
  AdbFileError,
  AdbInstallError,
  AdbInvalidArgumentError,
  AdbSizeLimitError,
  AdbUnavailableError,
  ArtifactTransferError,
} from './errors.js';
import type { CommandExecutor, CommandResultInit, ExecutorDevice } from './interfaces.js';
import { checkRemotePath } from './sync-ops.js';

export interface AdbCommandExecutorOptions {
  pool: Pick<AdbPool, 'device'>;
  /** The host credential for artifact downloads and uploads (a function to follow rotation). */
  credential: string | (() => string);
  /** Default: the global fetch. */
  fetch?: FetchFunction;
  /** Where downloads are staged before they reach a phone; default `<tmpdir>/cphone-artifacts`. */
  workDir?: string;
  logger?: Logger;
  now?: () => Date;
}

type ResultCase = Exclude<CommandResultInit['result'], undefined>;

const DEFAULT_LOGCAT_LINES = 1000;
const DEFAULT_LOGCAT_BYTES = 1024 * 1024;
const DEFAULT_PULL_MAX_BYTES = 1024 * 1024 * 1024;

/** Runs Commands from the control plane through the device's ADB client and answers CommandResults. */
export class AdbCommandExecutor implements CommandExecutor {
  readonly #options: AdbCommandExecutorOptions;
  readonly #logger: Logger;
  readonly #now: () => Date;

  constructor(options: AdbCommandExecutorOptions) {
    this.#options = options;
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({ module: 'command-executor' });
    this.#now = options.now ?? (() => new Date());
  }

  async execute(
    command: agentv1.Command,
    device: ExecutorDevice,
    options: { signal?: AbortSignal } = {},
  ): Promise<CommandResultInit> {
    const logger = this.#logger.child({
      commandId: command.commandId,
      deviceId: device.deviceId,
      kind: command.kind.case,
    });
    const finish = (code: agentv1.CommandCode, message: string, result?: ResultCase): CommandResultInit => ({
      commandId: command.commandId,
      code,
      message,
      finishedAt: timestampFromDate(this.#now()),
      ...(result && code === agentv1.CommandCode.OK ? { result } : {}),
    });
    const remaining = command.deadline
      ? timestampDate(command.deadline).getTime() - this.#now().getTime()
      : undefined;
    if (remaining !== undefined && remaining <= 0) {
      return finish(
        agentv1.CommandCode.DEADLINE_EXCEEDED,
        `deadline passed ${-remaining} ms before the command started`,
      );
    }
    const deadline = remaining === undefined ? undefined : AbortSignal.timeout(remaining);
    const signals = [deadline, options.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
    const started = performance.now();
    try {
      const result = await this.#run(command, this.#options.pool.device(device.adb), signal);
      logger.info({ ms: Math.round(performance.now() - started) }, 'command done');
      return finish(agentv1.CommandCode.OK, '', result);
    } catch (error) {
      if (deadline?.aborted) {
        logger.warn({ ms: Math.round(performance.now() - started) }, 'command deadline exceeded');
        return finish(agentv1.CommandCode.DEADLINE_EXCEEDED, `deadline exceeded after ${remaining} ms`);
      }
      if (options.signal?.aborted)
        return finish(agentv1.CommandCode.UNAVAILABLE, 'the agent abandoned the command');
      const [code, message] = classify(error);
      if (code === agentv1.CommandCode.INTERNAL) logger.error({ err: error }, 'command failed');
      else logger.info({ code: agentv1.CommandCode[code], message }, 'command failed');
      return finish(code, message);
    }
  }

  async #run(
    command: agentv1.Command,
    device: DeviceAdb,
    signal: AbortSignal | undefined,
  ): Promise<ResultCase> {
    const { kind } = command;
    switch (kind.case) {
      case 'installApp': {
        const c = kind.value;
        const ref = { url: c.downloadUrl, sha256: c.artifactSha256, sizeBytes: Number(c.sizeBytes) };
        checkArtifactRef(ref, 'installApp');
        const apk = await downloadArtifact(ref, this.#workDir, this.#transfer(signal));
        try {
          const installed = await device.install(
            { path: apk.path },
            {
              sha256: c.artifactSha256,
              grantPermissions: c.grantRuntimePermissions,
              allowDowngrade: c.allowDowngrade,
              signal,
            },
          );
          return {
            case: 'installApp',
            value: {
              packageName: installed.packageName ?? '',
              versionCode: BigInt(installed.versionCode ?? 0),
              versionName: installed.versionName ?? '',
            },
          };
        } finally {
          await apk.dispose();
        }
      }
      case 'shell': {
        const c = kind.value;
        if (c.command.trim() === '')
          throw new AdbInvalidArgumentError('shell.command', c.command, 'must not be empty');
        const timeoutMs = c.timeout ? durationMs(c.timeout as Duration) : undefined;
        const r = await device.shell(c.command, {
          ...(timeoutMs ? { timeoutMs } : {}),
          ...(c.maxOutputBytes ? { maxOutputBytes: c.maxOutputBytes } : {}),
          signal,
        });
        return {
          case: 'shell',
          value: {
            exitCode: r.exitCode,
            stdout: r.stdout,
            stderr: r.stderr,
            truncated: r.truncated,
            timedOut: r.timedOut,
          },
        };
      }
      case 'screenshot': {
        const shot = await device.screenshot({ signal });
        return { case: 'screenshot', value: { png: shot.png, widthPx: shot.width, heightPx: shot.height } };
      }
      case 'reboot':
        await device.reboot({ signal });
        return { case: 'reboot', value: {} };
      case 'pushFile': {
        const c = kind.value;
        const ref = { url: c.downloadUrl, sha256: c.artifactSha256, sizeBytes: Number(c.sizeBytes) };
        checkArtifactRef(ref, 'pushFile');
        checkRemotePath('pushFile.remotePath', c.remotePath);
        const file = await downloadArtifact(ref, this.#workDir, this.#transfer(signal));
        try {
          const { createReadStream } = await import('node:fs');
          const size = await device.push(createReadStream(file.path), c.remotePath, {
            mode: c.mode || 0o644,
            signal,
          });
          return { case: 'pushFile', value: { sizeBytes: BigInt(size) } };
        } finally {
          await file.dispose();
        }
      }
      case 'pullFile': {
        const c = kind.value;
        checkRemotePath('pullFile.remotePath', c.remotePath);
        checkHttpUrl('pullFile.uploadUrl', c.uploadUrl);
        const maxBytes = c.maxBytes > 0n ? Number(c.maxBytes) : DEFAULT_PULL_MAX_BYTES;
        const sent = await device.pullTo(
          c.remotePath,
          (stream, size) => uploadArtifact(c.uploadUrl, stream, size, this.#transfer(signal)),
          { maxBytes, signal },
        );
        return { case: 'pullFile', value: { sha256: sent.sha256, sizeBytes: BigInt(sent.sizeBytes) } };
      }
      case 'getProp': {
        const props = await device.getprop(kind.value.keys, { signal });
        return { case: 'getProp', value: { properties: Object.fromEntries(props) } };
      }
      case 'input': {
        const injected = await device.input(inputActions(kind.value.events), { signal });
        return { case: 'input', value: { injected } };
      }
      case 'logcat': {
        const c = kind.value;
        const dump = await device.logcat({
          lines: c.maxLines > 0 ? c.maxLines : DEFAULT_LOGCAT_LINES,
          filterSpecs: c.filterSpecs,
          maxBytes: c.maxBytes > 0 ? c.maxBytes : DEFAULT_LOGCAT_BYTES,
          signal,
        });
        return { case: 'logcat', value: { text: Buffer.from(dump.text, 'utf8'), truncated: dump.truncated } };
      }
      default:
        throw new UnknownKindError(kind.case);
    }
  }

  get #workDir(): string {
    return this.#options.workDir ?? join(tmpdir(), 'cphone-artifacts');
  }

  #transfer(signal: AbortSignal | undefined) {
    const { credential } = this.#options;
    return {
      fetch: this.#options.fetch ?? globalThis.fetch,
      credential: typeof credential === 'function' ? credential() : credential,
      signal,
    };
  }
}

class UnknownKindError extends Error {
  constructor(readonly kind: string | undefined) {
    super(kind === undefined ? 'the command names no kind' : `this agent cannot run ${kind} commands`);
  }
}

/** One place that turns the ADB layer's errors into command codes. */
function classify(error: unknown): [agentv1.CommandCode, string] {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof AdbInvalidArgumentError) return [agentv1.CommandCode.INVALID_ARGUMENT, message];
  if (error instanceof AdbUnavailableError) return [agentv1.CommandCode.UNAVAILABLE, message];
  if (error instanceof ArtifactTransferError) return [agentv1.CommandCode.UNAVAILABLE, message];
  if (error instanceof AdbInstallError) return [agentv1.CommandCode.ABORTED, `pm install failed: ${message}`];
  if (error instanceof AdbSizeLimitError) return [agentv1.CommandCode.RESOURCE_EXHAUSTED, message];
  if (error instanceof AdbFileError) return [agentv1.CommandCode.FAILED_PRECONDITION, message];
  if (error instanceof InputUnsupportedError) return [agentv1.CommandCode.UNIMPLEMENTED, message];
  if (error instanceof UnknownKindError) {
    return error.kind === undefined
      ? [agentv1.CommandCode.INVALID_ARGUMENT, message]
      : [agentv1.CommandCode.UNIMPLEMENTED, message];
  }
  return [agentv1.CommandCode.INTERNAL, 'internal error in the agent (logged)'];
}
