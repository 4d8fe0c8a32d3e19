import { randomBytes } from 'node:crypto';
import type { Adb } from '@yume-chan/adb';
import { CappedBuffer, drainInto, shellQuote } from './output.js';

export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

export interface ShellOptions {
  /** Kill the command after this long; the result then has `timedOut` and exit code -1. */
  timeoutMs?: number | undefined;
  /** Bytes kept of each of stdout and stderr; default 1 MiB. */
  maxOutputBytes?: number | undefined;
  /** Written to the command's stdin (shell v2 only), then stdin is closed. */
  stdin?: Uint8Array | undefined;
  /** Aborts: the command is killed and the signal's reason thrown. */
  signal?: AbortSignal | undefined;
}

export interface ShellResult {
  /** Exit status; -1 when killed on timeout or unknown. */
  exitCode: number;
  stdout: Uint8Array;
  /** Empty without shell v2: `exec:` merges stderr into stdout. */
  stderr: Uint8Array;
  /** stdout or stderr was cut at maxOutputBytes. */
  truncated: boolean;
  timedOut: boolean;
}

/** Runs `command` with `/system/bin/sh -c` semantics, over shell v2 when `useShellV2`. */
export async function runShell(
  adb: Adb,
  command: string,
  options: ShellOptions & { useShellV2: boolean },
): Promise<ShellResult> {
  options.signal?.throwIfAborted();
  const limit = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const shellProtocol = adb.subprocess.shellProtocol;
  if (options.useShellV2 && shellProtocol?.isSupported) {
    // An array of one is passed through as-is; a string would be re-split by @yume-chan/adb.
    const process = await shellProtocol.spawn([command]);
    const stdout = new CappedBuffer(limit);
    const stderr = new CappedBuffer(limit);
    return supervise(process.kill.bind(process), options, { stdout, stderr }, async () => {
      const stdin = process.stdin.getWriter();
      if (options.stdin) await stdin.write(options.stdin);
      await stdin.close().catch(() => {});
      stdin.releaseLock();
      const [, , exitCode] = await Promise.all([
        drainInto(process.stdout, stdout),
        drainInto(process.stderr, stderr),
        process.exited,
      ]);
      return exitCode;
    });
  }
  // Old adbd without shell v2: no exit status on the wire, so the command echoes it after a nonce.
  const nonce = `~cphone-exit-${randomBytes(6).toString('hex')}~`;
  const process = await adb.subprocess.noneProtocol.spawn([`sh -c ${shellQuote(command)}; echo ${nonce}$?`]);
  const output = new ExecOutput(limit);
  const collected = { stdout: output.stdout(nonce), stderr: new CappedBuffer(0) };
  return supervise(process.kill.bind(process), options, collected, async () => {
    await Promise.all([drainInto(process.output, output), process.exited]);
    return output.exitCode(nonce);
  });
}

interface Collected {
  stdout: ExecStdout;
  stderr: ExecStdout;
}

/**
 * Applies the kill timer and the abort signal around one running process. On timeout the output
 * read so far is kept: it usually tells why the command hung.
 */
async function supervise(
  kill: () => unknown,
  { timeoutMs, signal }: ShellOptions,
  { stdout, stderr }: Collected,
  run: () => Promise<number>,
): Promise<ShellResult> {
  let timedOut = false;
  const stop = (): void => {
    void Promise.resolve(kill()).catch(() => {});
  };
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          stop();
        }, timeoutMs);
  signal?.addEventListener('abort', stop, { once: true });
  try {
    let exitCode = -1;
    try {
      exitCode = await run();
    } catch (error) {
      // Killed on timeout, the socket closes before an exit packet arrives: not a failure.
      if (!timedOut || signal?.aborted) throw error;
    }
    if (signal?.aborted) throw signal.reason;
    return {
      exitCode: timedOut ? -1 : exitCode,
      stdout: stdout.bytes(),
      stderr: stderr.bytes(),
      truncated: stdout.truncated || stderr.truncated,
      timedOut,
    };
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', stop);
  }
}

interface ExecStdout {
  truncated: boolean;
  bytes(): Uint8Array;
}

/** Output of the exec fallback: the head up to the limit plus a tail long enough for the marker. */
export class ExecOutput {
  static readonly TAIL = 64;
  readonly #head: CappedBuffer;
  #tail = new Uint8Array(0);

  constructor(readonly limit: number) {
    this.#head = new CappedBuffer(limit + ExecOutput.TAIL);
  }

  push(chunk: Uint8Array): void {
    this.#head.push(chunk);
    const joined = Buffer.concat([this.#tail, chunk]);
    this.#tail = joined.subarray(Math.max(0, joined.byteLength - ExecOutput.TAIL));
  }

  /** The output without the trailing `<nonce><status>\n`. */
  stdout(nonce: string): ExecStdout {
    const outputBytes = (): number => this.#outputBytes(nonce);
    const { limit } = this;
    const head = this.#head;
    return {
      get truncated() {
        return outputBytes() > limit;
      },
      bytes: () => head.bytes().subarray(0, Math.min(outputBytes(), limit)),
    };
  }

  /** The status echoed after the nonce; -1 if it never came (killed). */
  exitCode(nonce: string): number {
    return this.#marker(nonce)?.code ?? -1;
  }

  /** Where the marker starts (its byte length) and the status after it, if one was printed. */
  #marker(nonce: string): { code: number | undefined; bytes: number } | undefined {
    const tail = Buffer.from(this.#tail).toString('latin1');
    const at = tail.lastIndexOf(nonce);
    if (at === -1) return undefined;
    const status = /^(\d+)\s*$/.exec(tail.slice(at + nonce.length));
    return { code: status ? Number.parseInt(status[1]!, 10) : undefined, bytes: tail.length - at };
  }

  #outputBytes(nonce: string): number {
    return this.#head.total - (this.#marker(nonce)?.bytes ?? 0);
  }
}
