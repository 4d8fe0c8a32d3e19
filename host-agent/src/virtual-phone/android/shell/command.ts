import { posix } from 'node:path';
import type { ByteReader } from '../../byte-reader.js';
import type { AndroidDevice } from '../android-device.js';

export interface CommandContext {
  device: AndroidDevice;
  /** argv[0] is the command name as typed. */
  argv: string[];
  env: Readonly<Record<string, string>>;
  /** The shell's working directory; relative paths resolve against it (`resolvePath`). */
  cwd: string;
  stdin: ByteReader;
  stdout(data: string | Uint8Array): Promise<void>;
  stderr(data: string | Uint8Array): Promise<void>;
  /** Aborted when the adb stream closes or the phone reboots (the process is killed). */
  signal: AbortSignal;
  /** Runs a nested command line (`sh -c`) with the same streams. */
  run(line: string): Promise<number>;
}

/** `path` as the program sees it: relative to the shell's working directory. */
export function resolvePath(ctx: Pick<CommandContext, 'cwd'>, path: string): string {
  return posix.resolve(ctx.cwd, path);
}

/** A program on the phone: resolves with its exit status. */
export type Command = (ctx: CommandContext) => Promise<number>;

/** Resolves when `signal` aborts (processes that run "until killed"). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
