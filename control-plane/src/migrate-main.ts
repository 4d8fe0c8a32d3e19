// `npm run migrate`: brings the database named by the environment (DATABASE_URL, or the PGlite in
// CPHONE_DATA_DIR) to the latest schema and exits. For deployments that start the server with
// CPHONE_MIGRATE=false and migrate as a separate step (one job, before the replicas roll).
// `--version` prints the version and commit and exits.
import { join } from 'node:path';
import { exitIfVersionFlag } from '@cphone/proto/version';
import { describeConfig, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { openDatabase } from './store/database.js';
import { migrateToLatest } from './store/migrate.js';

exitIfVersionFlag('cphone-migrate');
const config = loadConfig();
const logger = createLogger(config.logLevel);
logger.info({ config: describeConfig(config) }, 'migrating');
const database = await openDatabase({
  url: config.databaseUrl,
  pgliteDir: config.databaseUrl ? undefined : join(config.dataDir, 'pglite'),
});
try {
  const applied = await migrateToLatest(database.db);
  logger.info(
    { applied, database: database.kind },
    applied.length ? 'migrations applied' : 'schema already current',
  );
} catch (err) {
  logger.error({ err }, 'migration failed');
  process.exitCode = 1;
} finally {
  await database.close();
}
