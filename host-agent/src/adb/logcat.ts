import type { Adb } from '@yume-chan/adb';
import { AdbInvalidArgumentError } from './errors.js';

export interface LogcatDumpOptions {
  /** Most recent lines to return. */
  lines: number;
  /** Filter specs such as `ActivityManager:I` or `*:S`. */
  filterSpecs?: readonly string[] | undefined;
  /** Cut the text at this many bytes (at a line boundary). */
  maxBytes?: number | undefined;
}

export interface LogcatDump {
  text: string;
  /** More lines or bytes existed than were returned. */
  truncated: boolean;
}

/** Validated `logcat` arguments (filter specs go through the device shell). */
export function logcatArgs(filterSpecs: readonly string[] = []): string[] {
  for (const spec of filterSpecs) {
    if (!/^[\w.$*-]+(?::[VDIWEFS*])?$/.test(spec) || spec.includes('$')) {
      throw new AdbInvalidArgumentError(
        'filterSpecs',
        spec,
        'must look like TAG:PRIORITY (e.g. ActivityManager:I, *:S)',
      );
    }
  }
  // '*' would be globbed by the shell: quote every spec.
  return filterSpecs.map((spec) => `'${spec}'`);
}

/** Builds the dump command: one line more than asked tells whether older lines were cut. */
export function logcatDumpCommand({ lines, filterSpecs }: LogcatDumpOptions): string {
  if (!Number.isInteger(lines) || lines < 1 || lines > 1_000_000) {
    throw new AdbInvalidArgumentError('lines', lines, 'must be an integer from 1 to 1000000');
  }
  return ['logcat -d -v threadtime -t', String(lines + 1), ...logcatArgs(filterSpecs)].join(' ');
}

/** Keeps the newest `lines` lines within `maxBytes`. */
export function trimLogcat(output: string, { lines, maxBytes }: LogcatDumpOptions): LogcatDump {
  let all = output.split('\n');
  if (all.at(-1) === '') all = all.slice(0, -1);
  let truncated = all.length > lines;
  let kept = all.slice(-lines);
  if (maxBytes !== undefined) {
    let bytes = 0;
    let start = kept.length;
    while (start > 0 && bytes + Buffer.byteLength(kept[start - 1]!) + 1 <= maxBytes) {
      bytes += Buffer.byteLength(kept[start - 1]!) + 1;
      start--;
    }
    if (start > 0) truncated = true;
    kept = kept.slice(start);
  }
  return { text: kept.map((l) => `${l}\n`).join(''), truncated };
}

/**
 * Follows logcat until `signal` aborts, the consumer stops, or the device goes away; yields one
 * line at a time. Lines are read only as fast as they are consumed, so run it on a connection of
 * its own: a slow consumer would otherwise stall every other socket multiplexed on the same one.
 */
export async function* followLogcat(
  adb: Adb,
  { filterSpecs, signal }: { filterSpecs?: readonly string[] | undefined; signal?: AbortSignal | undefined },
): AsyncGenerator<string, void, void> {
  signal?.throwIfAborted();
  const process = await adb.subprocess.noneProtocol.spawn([
    ['logcat -v threadtime', ...logcatArgs(filterSpecs)].join(' '),
  ]);
  const reader = process.output.getReader();
  const stop = (): void => {
    void Promise.resolve(process.kill()).catch(() => {});
    void reader.cancel().catch(() => {});
  };
  signal?.addEventListener('abort', stop, { once: true });
  const decoder = new TextDecoder();
  let partial = '';
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((error: unknown) => {
        if (signal?.aborted) return { done: true as const, value: undefined };
        throw error;
      });
      if (done || signal?.aborted) break;
      const parts = (partial + decoder.decode(value, { stream: true })).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) yield line.replace(/\r$/, '');
    }
    if (partial && !signal?.aborted) yield partial;
  } finally {
    signal?.removeEventListener('abort', stop);
    stop();
  }
}
