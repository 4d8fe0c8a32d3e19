// Test support: the whole control plane started as in production, on ephemeral ports, over a fresh
// database: a scratch PostgreSQL database with DATABASE_URL (the server migrates it), else PGlite
// in the data dir.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type ControlPlaneConfig, loadConfig } from './config.js';
import { type ControlPlane, type StartOptions, startControlPlane } from './server.js';
import { createTestDatabase } from './store/test-database.js';

export interface TestControlPlane {
  readonly plane: ControlPlane;
  readonly dataDir: string;
  /** Stops the control plane, drops its database and removes its data dir. */
  close(): Promise<void>;
}

/** `config` overrides the defaults (HTTP and gRPC on port 0); the logger is silent unless given. */
export async function startTestControlPlane(
  config: Partial<ControlPlaneConfig> = {},
  options: StartOptions = {},
): Promise<TestControlPlane> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-cp-'));
  const external = process.env.DATABASE_URL ? await createTestDatabase({ kind: 'postgres' }) : undefined;
  const plane = await startControlPlane(
    loadConfig({}, { dataDir, databaseUrl: external?.url, httpPort: 0, grpcPort: 0, ...config }),
    { logger: pino({ level: 'silent' }), ...options },
  );
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
 * Polls `probe` until it returns something other than undefined or false, and returns that. A probe
 * that throws is tried again; on timeout the error names `what` and the last error seen.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
