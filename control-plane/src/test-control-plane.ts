// Test support: the whole control plane started as in production, on ephemeral ports, over a fresh
// database: a scratch PostgreSQL database with DATABASE_URL (the server migrates it), else PGlite
// in the data dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type ControlPlaneConfig, loadConfig } from './config.js';
import type { StartedAgentGateway } from './gateway/gateway.js';
import { type ControlPlane, type StartOptions, startControlPlane } from './server.js';
import { openDatabase } from './store/database.js';
import type { Database } from './store/schema.js';
import { createTestDatabase, defaultDatabaseKind } from './store/test-database.js';

export interface TestControlPlane {
  readonly plane: ControlPlane;
  readonly dataDir: string;
  /** Stops the control plane, drops its database and removes its data dir. */
  close(): Promise<void>;
}

/** The test defaults (see startTestControlPlane) over a data dir and database, then `config`. */
export function testConfig(
  dataDir: string,
  databaseUrl: string | undefined,
  config: Partial<ControlPlaneConfig> = {},
): ControlPlaneConfig {
  return loadConfig(
    {},
    {
      dataDir,
      databaseUrl,
      httpPort: 0,
      grpcPort: 0,
      heartbeatTtlMs: 600_000,
      lostGraceMs: 600_000,
      // Suites and benchmarks drive the API harder than a customer may; a suite about rate
      // limits sets its own.
      rateLimitKeyRps: 1_000_000,
      rateLimitKeyBurst: 1_000_000,
      rateLimitTenantRps: 1_000_000,
      rateLimitTenantBurst: 1_000_000,
      ...config,
    },
  );
}

/**
 * `config` overrides the defaults: HTTP and gRPC on port 0, rate limits far above the defaults, and
 * a heartbeat TTL and lost grace of ten minutes, so that no test crosses them by being slow on a loaded machine (one that means to
 * cross them sets its own and moves a ManualClock). The logger is silent unless given.
 */
export async function startTestControlPlane(
  config: Partial<ControlPlaneConfig> = {},
  options: StartOptions = {},
): Promise<TestControlPlane> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-cp-'));
  const external = process.env.DATABASE_URL ? await createTestDatabase({ kind: 'postgres' }) : undefined;
  const plane = await startControlPlane(testConfig(dataDir, external?.url, config), {
    logger: pino({ level: 'silent' }),
    ...options,
  });
  return {
    plane,
    dataDir,
    close: async () => {
      await plane.close();
      await external?.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs one liveness pass of the plane's gateway now (flush heartbeats, cut off silent streams, ping
 * live ones, mark hosts unreachable and phones lost), as its timer would: with a ManualClock the
 * pass judges the time the test set, so its outcome does not race the wall clock.
 */
export function checkLiveness(plane: ControlPlane): Promise<void> {
  return (plane.deps.gateway as StartedAgentGateway).checkLiveness();
}

/** A database several replicas in one test share, and what to hand each replica's start. */
export interface SharedTestDatabase {
  /** PostgreSQL: the scratch database's URL, for each replica's config. */
  readonly databaseUrl: string | undefined;
  /** PGlite: the one in-process instance, for each replica's start options. */
  readonly database: Awaited<ReturnType<typeof openDatabase<Database>>> | undefined;
  close(): Promise<void>;
}

/** PostgreSQL (a scratch database) when DATABASE_URL is set, else one PGlite instance in process. */
export async function sharedTestDatabase(): Promise<SharedTestDatabase> {
  if (defaultDatabaseKind() === 'postgres') {
    const scratch = await createTestDatabase({ kind: 'postgres' });
    return { databaseUrl: scratch.url, database: undefined, close: scratch.close };
  }
  const database = await openDatabase<Database>();
  return { databaseUrl: undefined, database, close: database.close };
}
