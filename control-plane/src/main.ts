// The control-plane process: config from the environment, graceful shutdown on SIGTERM/SIGINT,
// the gateway's TLS files read again on SIGHUP. `--version` prints the version and commit and exits.
import { exitIfVersionFlag } from '@cphone/proto/version';
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startControlPlane } from './server.js';

exitIfVersionFlag('cphone-control-plane');
const config = loadConfig();
const logger = createLogger(config.logLevel);
const plane = await startControlPlane(config, { logger });
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    plane.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
process.on('SIGHUP', () => {
  logger.info('SIGHUP: reloading the gateway TLS files');
  void plane.reloadTls();
});
