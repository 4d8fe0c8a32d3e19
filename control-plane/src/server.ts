import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type ServerType, serve } from '@hono/node-server';
import { sql } from 'kysely';
import { apiInterceptor } from './api/interceptors.js';
import { loadPageTokenKeys } from './api/page-token-keys.js';
import { usePageTokenKeys } from './api/pagination.js';
import { registerServices } from './api/routes.js';
import { mountAgentArtifacts } from './artifacts/agent-download.js';
import { mountAgentUpload } from './artifacts/agent-upload.js';
import { blobStoreFor } from './artifacts/artifact-service.js';
import { UploadSweeper } from './artifacts/upload-sweeper.js';
import { bootstrap } from './auth/bootstrap.js';
import { systemClock } from './clock.js';
import { Cluster, newReplicaId } from './cluster/cluster.js';
import { type ControlPlaneConfig, describeConfig } from './config.js';
import type { Deps } from './deps.js';
import { type AgentGatewayOptions, startAgentGateway } from './gateway/gateway.js';
import type { GatewayMessage } from './gateway/relay.js';
import { createMigrator, type Migrator } from './hosts/migrate.js';
import { createHttpApp } from './http/app.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import { type OpenDatabase, openDatabase } from './store/database.js';
import { migrateToLatest } from './store/migrate.js';
import type { Database } from './store/schema.js';

type FetchCallback = Parameters<typeof serve>[0]['fetch'];

export interface ControlPlane {
  /** Base URL of the HTTP server (API, health, metrics). */
  readonly httpUrl: string;
  /** The agent gateway's bound gRPC port (config.grpcPort, or the one picked for 0). */
  readonly grpcPort: number;
  readonly deps: Deps;
  /** The bootstrap admin token, only on the start that created it. */
  readonly bootstrapToken: string | undefined;
  /** This replica among the others on the same database (leadership, messages). */
  readonly cluster: Cluster<GatewayMessage>;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Agent gateway tuning (limits, timers); the defaults suit production. */
  gateway?: AgentGatewayOptions;
  /**
   * A database already open, shared with other replicas in this process (tests run several on one
   * PGlite); the caller closes it. By default the plane opens config.databaseUrl or its PGlite.
   */
  database?: OpenDatabase<Database>;
  /** How often a follower replica tries to take the leadership (default 5000 ms). */
  leaderPollMs?: number;
}

/** Starts the control plane: database (migrated), agent gateway, bootstrap, HTTP API. */
export async function startControlPlane(
  given: ControlPlaneConfig,
  options: StartOptions = {},
): Promise<ControlPlane> {
  let config = given;
  const logger = options.logger ?? createLogger(config.logLevel);
  logger.info({ config: describeConfig(config) }, 'starting control plane');
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const database =
    options.database ??
    (await openDatabase<Database>({
      url: config.databaseUrl,
      pgliteDir: config.databaseUrl ? undefined : join(config.dataDir, 'pglite'),
    }));
  const closers: (() => Promise<void>)[] = options.database ? [] : [() => database.close()];
  const closeAll = async () => {
    for (const close of closers.reverse())
      await close().catch((err: unknown) => logger.error({ err }, 'close failed'));
  };
  try {
    if (config.migrate) {
      const applied = await migrateToLatest(database.db);
      logger.info({ applied, database: database.kind }, 'migrations done');
    }
    // Listening before the services exist (they answer 503 until then) so that a port picked by the
    // system (0) is known to the public URL agents download artifacts from.
    let handle: FetchCallback = () => new Response('starting', { status: 503 });
    const server: ServerType = serve({
      fetch: (request, env) => handle(request, env),
      port: config.httpPort,
      hostname: config.httpHost,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    let ready = true;
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          ready = false;
          server.close(() => resolve());
          // Idle keep-alive sockets would hold close() open.
          (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        }),
    );
    const address = server.address() as AddressInfo;
    const publicUrl = new URL(config.publicUrl);
    if (publicUrl.port === '0') {
      publicUrl.port = String(address.port);
      config = Object.freeze({ ...config, publicUrl: publicUrl.href.replace(/\/$/, '') });
    }

    const metrics = createMetrics();
    const base = { config, db: database.db, logger, metrics, clock: systemClock };
    const cluster = new Cluster<GatewayMessage>({
      ...base,
      openSession: () => database.session(),
      replicaId: newReplicaId(),
      leaderPollMs: options.leaderPollMs,
    });
    await cluster.start();
    closers.push(() => cluster.close());
    // A device stopping on a host drained with MIGRATE is moved at once (hosts/migrate.ts); the
    // migrator needs the gateway to tell both hosts, so it is made once the gateway is up.
    let migrator: Migrator | undefined;
    const gateway = await startAgentGateway(base, {
      cluster,
      ...options.gateway,
      onDevicesStopped: (hostId) => {
        migrator?.migrate(hostId).catch((err: unknown) => {
          logger.error({ err, hostId }, 'drain re-placement after a stop failed');
        });
      },
    });
    closers.push(() => gateway.close());
    migrator = createMigrator({
      db: database.db,
      clock: systemClock,
      logger,
      desiredChanged: (hostId) => gateway.desiredChanged(hostId),
    });
    const deps: Deps = { ...base, gateway };
    const bootstrapToken = await bootstrap(database.db, config.dataDir, logger);
    usePageTokenKeys(await loadPageTokenKeys(config));

    const { app, rpcPaths } = createHttpApp({
      logger,
      metrics,
      ready: async () => {
        if (!ready) return false;
        await sql`select 1`.execute(database.db);
        return true;
      },
      routes: (router) => registerServices(router, deps),
      interceptors: [apiInterceptor(deps)],
      extend: (hono) => {
        const blobs = blobStoreFor(config);
        mountAgentArtifacts(hono, { db: database.db, blobs });
        mountAgentUpload(hono, {
          db: database.db,
          blobs,
          dataDir: config.dataDir,
          maxBytes: config.maxArtifactBytes,
        });
      },
    });
    handle = app.fetch;
    // Each replica sweeps the uploads staged on its own disk.
    const uploadSweeper = new UploadSweeper(base);
    closers.push(() => uploadSweeper.close());
    const httpUrl = `http://${config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost}:${address.port}`;
    logger.info({ httpUrl, grpcPort: gateway.port, rpcs: rpcPaths.length }, 'control plane listening');
    return { httpUrl, grpcPort: gateway.port, deps, bootstrapToken, cluster, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
