import pino, { type Logger } from 'pino';

export type { Logger };

/** The agent's root logger; modules take `logger.child({ module })`. The credential never reaches it. */
export function createLogger(level = 'info'): Logger {
  return pino({
    level,
    base: { service: 'host-agent' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['credential', '*.credential'], censor: '***' },
  });
}
