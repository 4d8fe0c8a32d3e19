// The host-agent daemon: `node host-agent/dist/cphone-agent.mjs` (built by `npm run build`; from source
// `node --import tsx host-agent/src/main.ts`; systemd: deploy/systemd/cphone-agent.service).
// `--version` prints the version and commit and exits.
import { exitIfVersionFlag } from '@cphone/proto/version';
import { startAgent } from './agent.js';
import { ConfigError, describeConfig, loadConfig } from './config.js';
import { createLogger } from './logger.js';

exitIfVersionFlag('cphone-agent');

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`cphone-agent: ${err.message}\n`);
  process.exit(2);
}
const logger = createLogger(config.logLevel);
logger.info({ config: describeConfig(config) }, 'configuration');

const agent = await startAgent(config, { logger });

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  // Phones are left running: they are the customers' devices, not the agent's children.
  const force = setTimeout(() => {
    logger.error('shutdown took too long; exiting');
    process.exit(1);
  }, 15_000);
  force.unref();
  try {
    await agent.close();
    process.exit(0);
  } catch (err) {
    logger.error({ err }, 'shutdown failed');
    process.exit(1);
  }
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
