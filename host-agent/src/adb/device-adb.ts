import type { Adb, AdbCredentialStore } from '@yume-chan/adb';
import { type Logger, pino } from 'pino';
import { delay, type OperationOptions, operationSignal, raceAbort } from './abort.js';
import { type AdbEndpoint, connectAdb, endpointKey } from './connect.js';
import { AdbError, AdbInvalidArgumentError, AdbUnavailableError } from './errors.js';
import { type InputAction, inputCommand } from './input.js';
import { type ApkSource, type InstallOptions, type InstallResult, installApk } from './install.js';
import {
  followLogcat,
  type LogcatDump,
  type LogcatDumpOptions,
  logcatDumpCommand,
  trimLogcat,
} from './logcat.js';
import { isPropertyName, parseGetpropDump } from './props.js';
import { captureScreen, type Screenshot } from './screen.js';
import { Semaphore } from './semaphore.js';
import { runShell, type ShellOptions, type ShellResult } from './shell.js';
import { type ByteSource, collect, pullFile, pushFile } from './sync-ops.js';

export interface DeviceAdbOptions {
  endpoint: AdbEndpoint;
  credentialStore: AdbCredentialStore;
  /** Operations running at once on this device; more wait their turn. Default 4. */
  maxConcurrent?: number;
  /** TCP connect plus AUTH. Default 10 s. */
  connectTimeoutMs?: number;
  /** Use shell v2 (separate stderr, exit status) when the device offers it. Default true. */
  shellV2?: boolean;
  logger?: Logger;
}

/** How long an operation may still settle by itself after its connection dropped (e.g. reboot). */
const LOST_GRACE_MS = 100;

/**
 * The agent's ADB client for one device: one connection, opened on first use, shared by every
 * operation (bounded by a semaphore), forgotten when it drops so the next operation reconnects.
 */
export class DeviceAdb {
  readonly endpoint: AdbEndpoint;
  readonly #options: DeviceAdbOptions;
  readonly #slots: Semaphore;
  readonly #logger: Logger;
  #connection: Promise<Adb> | undefined;
  #closed = false;

  constructor(options: DeviceAdbOptions) {
    this.endpoint = options.endpoint;
    this.#options = options;
    this.#slots = new Semaphore(options.maxConcurrent ?? 4);
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({
      module: 'adb',
      endpoint: endpointKey(options.endpoint),
    });
  }

  get #name(): string {
    return endpointKey(this.endpoint);
  }

  get #shellV2(): boolean {
    return this.#options.shellV2 ?? true;
  }

  /** Runs `fn` with the device's connection, within a concurrency slot, honouring signal and timeout. */
  async use<T>(
    fn: (adb: Adb, signal: AbortSignal | undefined) => Promise<T>,
    options: OperationOptions = {},
  ): Promise<T> {
    const signal = operationSignal(options);
    const release = await this.#slots.acquire(signal);
    try {
      const adb = await raceAbort(this.#connect(), signal);
      try {
        return await raceAbort(Promise.race([fn(adb, signal), this.#lost(adb)]), signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (await this.#droppedAfter(adb)) {
          if (error instanceof AdbError) throw error;
          throw new AdbUnavailableError(this.#name, `connection dropped: ${(error as Error).message}`, {
            cause: error,
          });
        }
        throw error;
      }
    } finally {
      release();
    }
  }

  shell(command: string, options: ShellOptions = {}): Promise<ShellResult> {
    return this.use(
      (adb, signal) => runShell(adb, command, { ...options, signal, useShellV2: this.#shellV2 }),
      {
        signal: options.signal,
      },
    );
  }

  install(source: ApkSource, options: Omit<InstallOptions, 'useShellV2'> = {}): Promise<InstallResult> {
    return this.use(
      (adb, signal) => installApk(adb, source, { ...options, signal, useShellV2: this.#shellV2 }),
      {
        signal: options.signal,
      },
    );
  }

  screenshot(options: OperationOptions = {}): Promise<Screenshot> {
    return this.use((adb, signal) => captureScreen(adb, signal), options);
  }

  /** Runs the actions in order in one shell (`&&`: a failing one stops the rest). */
  async input(actions: readonly InputAction[], options: OperationOptions = {}): Promise<number> {
    if (actions.length === 0) return 0;
    const line = actions.map(inputCommand).join(' && ');
    const result = await this.shell(line, { ...options, maxOutputBytes: 16 * 1024 });
    if (result.exitCode !== 0) {
      const detail = Buffer.from(result.stderr.byteLength ? result.stderr : result.stdout)
        .toString('utf8')
        .trim();
      throw new AdbInvalidArgumentError(
        'input',
        line,
        detail || `input exited with status ${result.exitCode}`,
      );
    }
    return actions.length;
  }

  /** Asks Android to reboot; resolves once adbd took the request (the connection then drops). */
  async reboot(options: OperationOptions = {}): Promise<void> {
    await this.use(async (adb) => {
      await adb.power.reboot().catch((error: unknown) => {
        // adbd may cut the connection before answering; the request was delivered either way.
        this.#logger.debug({ err: error }, 'reboot answer lost with the connection');
      });
      // Rebooting: nothing more will run on this connection.
      this.#forget(adb);
    }, options);
  }

  async logcat(options: LogcatDumpOptions & OperationOptions): Promise<LogcatDump> {
    const result = await this.shell(logcatDumpCommand(options), {
      signal: operationSignal(options),
      maxOutputBytes: Math.max((options.maxBytes ?? 8 * 1024 * 1024) * 2, 64 * 1024),
    });
    if (result.exitCode !== 0 && !result.timedOut) {
      throw new AdbError(
        `logcat exited with status ${result.exitCode}: ${Buffer.from(result.stderr).toString('utf8').trim()}`,
      );
    }
    const dump = trimLogcat(Buffer.from(result.stdout).toString('utf8'), options);
    return { ...dump, truncated: dump.truncated || result.truncated };
  }

  /**
   * Follows logcat as lines arrive, on a connection of its own (see followLogcat) that closes
   * when the iteration ends or `signal` aborts.
   */
  async *logcatStream(
    options: { filterSpecs?: readonly string[]; signal?: AbortSignal } = {},
  ): AsyncGenerator<string, void, void> {
    const adb = await this.connectDedicated(options.signal);
    try {
      yield* followLogcat(adb, options);
    } finally {
      await adb.close().catch(() => {});
    }
  }

  /**
   * A connection of its own to the same adbd, with the agent's key, for a long-lived stream
   * (logcat, the screen): sockets on one connection share its TCP stream and adb's flow control,
   * so an APK push would stall the video and a stalled reader every other operation. The caller
   * closes it.
   */
  connectDedicated(signal?: AbortSignal): Promise<Adb> {
    if (this.#closed) return Promise.reject(new AdbUnavailableError(this.#name, 'client closed'));
    return connectAdb(this.endpoint, {
      credentialStore: this.#options.credentialStore,
      timeoutMs: this.#options.connectTimeoutMs ?? 10_000,
      signal,
    });
  }

  push(
    source: ByteSource,
    remotePath: string,
    options: OperationOptions & { mode?: number } = {},
  ): Promise<number> {
    return this.use(
      (adb, signal) =>
        pushFile(adb, source, remotePath, {
          ...(options.mode === undefined ? {} : { mode: options.mode }),
          signal,
        }),
      options,
    );
  }

  /** The whole file, refused with AdbSizeLimitError above `maxBytes`. */
  pull(remotePath: string, options: OperationOptions & { maxBytes: number }): Promise<Uint8Array> {
    return this.pullTo(remotePath, collect, options);
  }

  /** Streams the file to `consume` (for example into an HTTP upload) without holding it in memory. */
  pullTo<T>(
    remotePath: string,
    consume: (stream: ReadableStream<Uint8Array>, size: number) => Promise<T>,
    options: OperationOptions & { maxBytes: number },
  ): Promise<T> {
    return this.use(
      (adb, signal) => pullFile(adb, remotePath, consume, { maxBytes: options.maxBytes, signal }),
      options,
    );
  }

  /** The properties asked for (absent when unset), or every property when `keys` is empty. */
  async getprop(keys: readonly string[] = [], options: OperationOptions = {}): Promise<Map<string, string>> {
    for (const key of keys) {
      if (!isPropertyName(key)) throw new AdbInvalidArgumentError('keys', key, 'is not a property name');
    }
    const result = await this.shell('getprop', { ...options, maxOutputBytes: 4 * 1024 * 1024 });
    if (result.exitCode !== 0) throw new AdbError(`getprop exited with status ${result.exitCode}`);
    const all = parseGetpropDump(Buffer.from(result.stdout).toString('utf8'));
    if (keys.length === 0) return all;
    const picked = new Map<string, string>();
    for (const key of keys) {
      const value = all.get(key);
      if (value !== undefined && value !== '') picked.set(key, value);
    }
    return picked;
  }

  /**
   * Resolves once `sys.boot_completed` is 1. Refused connections, drops and AUTH stalls while the
   * phone boots are expected: each is retried with capped exponential backoff plus jitter.
   */
  async waitForBoot(
    signal?: AbortSignal,
    { probeTimeoutMs = 5000, maxBackoffMs = 2000 } = {},
  ): Promise<void> {
    let backoff = 100;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        const result = await this.shell('getprop sys.boot_completed', {
          signal: operationSignal({ signal, timeoutMs: probeTimeoutMs }),
          maxOutputBytes: 256,
        });
        if (Buffer.from(result.stdout).toString('utf8').trim() === '1') return;
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        this.#logger.debug({ attempt, err: error }, 'boot probe failed; retrying');
      }
      await delay(backoff / 2 + Math.random() * (backoff / 2), signal);
      backoff = Math.min(backoff * 2, maxBackoffMs);
    }
  }

  /** Closes the connection; later calls fail with AdbUnavailableError. */
  async close(): Promise<void> {
    this.#closed = true;
    const connection = this.#connection;
    this.#connection = undefined;
    await connection?.then((adb) => adb.close()).catch(() => {});
  }

  #connect(): Promise<Adb> {
    if (this.#closed) return Promise.reject(new AdbUnavailableError(this.#name, 'client closed'));
    if (this.#connection) return this.#connection;
    const connecting = connectAdb(this.endpoint, {
      credentialStore: this.#options.credentialStore,
      timeoutMs: this.#options.connectTimeoutMs ?? 10_000,
    });
    this.#connection = connecting;
    connecting.then(
      (adb) => {
        this.#logger.debug({ banner: adb.banner.model }, 'adb connected');
        const dropped = (): void => {
          if (this.#connection === connecting) this.#connection = undefined;
          this.#logger.debug('adb connection closed');
        };
        adb.disconnected.then(dropped, dropped);
      },
      () => {
        // A failed attempt is not cached: the next operation tries again.
        if (this.#connection === connecting) this.#connection = undefined;
      },
    );
    return connecting;
  }

  /**
   * Rejects once `adb` disconnects and the operation has not settled within a short grace:
   * @yume-chan/adb leaves an OPEN sent on a dead connection pending forever.
   */
  #lost(adb: Adb): Promise<never> {
    const lost = adb.disconnected
      .catch(() => {})
      .then(() => delay(LOST_GRACE_MS))
      .then(() => {
        throw new AdbUnavailableError(this.#name, 'connection dropped during the operation');
      });
    lost.catch(() => {});
    return lost;
  }

  /** Whether `adb` is gone (or goes within a moment: socket errors surface before the transport's). */
  async #droppedAfter(adb: Adb): Promise<boolean> {
    const gone = await Promise.race([
      adb.disconnected.then(
        () => true,
        () => true,
      ),
      delay(50).then(() => false),
    ]);
    if (gone) this.#forget(adb);
    return gone;
  }

  /** Drops `adb` (if it is still the current connection) so the next operation reconnects. */
  #forget(adb: Adb): void {
    const connection = this.#connection;
    void connection?.then((current) => {
      if (current === adb && this.#connection === connection) this.#connection = undefined;
    });
    void Promise.resolve(adb.close()).catch(() => {});
  }
}
