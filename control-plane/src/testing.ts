// Test support for this package and for the cross-package tests in tests/.
import { migrateToLatest } from './store/migrate.js';
import type { Database } from './store/schema.js';
import {
  type CreateTestDatabaseOptions,
  createTestDatabase,
  type TestDatabase,
} from './store/test-database.js';

export { bearerTransport } from './api/bearer-transport.js';
// Credentials and host rows for benchmarks that enroll thousands of hosts in bulk.
export { createApiKey, hashSecret } from './auth/api-keys.js';
export { closeMonth, monthOf, parseMonth } from './billing/statements.js';
export { ManualClock } from './clock.js';
export { CONTROL_PLANE_VERSION } from './gateway/hello.js';
export { createAgentClient, TestAgent } from './gateway/test-agent.js';
export {
  enrollTestHost,
  insertTestDevice,
  type TestDeviceInput,
  type TestHost,
  type TestHostInput,
} from './gateway/testing.js';
export { newHostRow } from './hosts/host-row.js';
export { newSecret } from './ids.js';
export { allocationReport, insertHosts } from './placement/testing.js';
export {
  availableDatabaseKinds,
  createTestDatabase,
  defaultDatabaseKind,
  type TestDatabase,
} from './store/test-database.js';
export { checkLiveness, startTestControlPlane, type TestControlPlane } from './test-control-plane.js';
// Usage intake as the gateway calls it, raw partitions, and the rollup runs a query reads (bench/usage.ts).
export { ingestUsage } from './usage/intake.js';
export { ensureUsagePartitions } from './usage/partitions.js';
export { planUsage } from './usage/usage-query.js';

/** A fresh, migrated database for one test file (PostgreSQL when DATABASE_URL is set, else PGlite). */
export function createTestStore(
  options: Omit<CreateTestDatabaseOptions<Database>, 'setup'> = {},
): Promise<TestDatabase<Database>> {
  return createTestDatabase<Database>({
    ...options,
    setup: (db) => migrateToLatest(db).then(() => undefined),
  });
}
export { fuzzAgentStreams } from './fuzz/agent-fuzz.js';
export { type FuzzReport, fuzzApi } from './fuzz/api-fuzz.js';
export { createFuzzFixture, type FuzzFixture } from './fuzz/fixture.js';
export { seedFrom } from './fuzz/random.js';
