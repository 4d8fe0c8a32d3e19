// For tests: the options each scrcpy server was started with on virtual phones, read from their
// adbd's log (it logs each stream it opens with its service, `exec:… app_process / <class> 3.3.3
// k=v…`), so a test sees what the phone was asked for, not the ingest's idea of it.
import { type Logger, pino } from 'pino';
import { parseServerOptions, type ScrcpyServerOptions } from './server-options.js';

const SERVER_CLASS = 'com.genymobile.scrcpy.Server ';

/** A server's options, and when adbd opened its stream (performance.now(), ms). */
export type ScrcpyServerStart = ScrcpyServerOptions & { readonly at: number };

export interface ScrcpyServerStarts {
  /** Give this to startVirtualPhone. */
  readonly logger: Logger;
  /** Every start on the phone with this serial, in order. */
  of(serial: string): ScrcpyServerStart[];
}

export function recordScrcpyServerStarts(): ScrcpyServerStarts {
  const starts = new Map<string, ScrcpyServerStart[]>();
  const logger = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        const { service, serial } = JSON.parse(line) as { service?: unknown; serial?: unknown };
        if (typeof service !== 'string' || !service.includes(SERVER_CLASS)) return;
        const key = String(serial);
        const options = parseServerOptions(service.split(SERVER_CLASS)[1]!.split(' '));
        starts.set(key, [...(starts.get(key) ?? []), { ...options, at: performance.now() }]);
      },
    },
  );
  return { logger, of: (serial) => starts.get(serial) ?? [] };
}
