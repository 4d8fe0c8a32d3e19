import pino, { type Logger } from 'pino';

export type { Logger };

/** The root logger; modules take `logger.child({ module })`. */
export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { service: 'control-plane' }, timestamp: pino.stdTimeFunctions.isoTime });
}
