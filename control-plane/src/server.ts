import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { AuditWriter } from './api/audit-writer.js';
import { apiInterceptor } from './api/interceptors.js';
import { loadKeys, loadPageTokenKeys } from './api/page-token-keys.js';
import { usePageTokenKeys } from './api/pagination.js';
import { RateLimiter } from './api/rate-limit.js';
import { registerServices } from './api/routes.js';
import { mountAgentArtifacts } from './artifacts/agent-download.js';
import { mountAgentUpload } from './artifacts/agent-upload.js';
import { blobStoreFor } from './artifacts/artifact-service.js';
import { UploadSweeper } from './artifacts/upload-sweeper.js';
import { AuthCache } from './auth/auth-cache.js';
import { bootstrap, bootstrapAdminUser } from './auth/bootstrap.js';
import { StatementCloser } from './billing/closer.js';
import { type Clock, systemClock } from './clock.js';
import { Cluster, newReplicaId } from './cluster/cluster.js';
import { type ControlPlaneConfig, describeConfig } from './config.js';
import type { Deps } from './deps.js';
import { type AgentGatewayOptions, startAgentGateway } from './gateway/gateway.js';
import type { GatewayMessage } from './gateway/relay.js';
import { Drainer } from './hosts/drainer.js';
import { createHttpApp } from './http/app.js';
import { mountConsole } from './http/console.js';
import { listenHttp, type RequestListener } from './http/listen.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import { clusterFleetFeed } from './placement/fleet-feed.js';
import { Planner } from './placement/planner.js';
import { type OpenDatabase, openDatabase } from './store/database.js';
import { deviceCountsByState } from './store/devices.js';
import { hostCountsByConnection } from './store/hosts.js';
import { migrateToLatest, schemaStatus } from './store/migrate.js';
import type { Database } from './store/schema.js';
import { StreamKeys } from './streams/keys.js';
import { announceMinutesThreshold, MinutesEnforcer } from './tenants/minutes-enforcer.js';
import { UsageMaintenance } from './usage/partitions.js';
import { WebhookWorker } from './webhooks/delivery-worker.js';
import { SecretBox } from './webhooks/secrets.js';
import { TargetPolicy } from './webhooks/target-policy.js';

export interface ControlPlane {
  /** Base URL of the HTTP server (API, health, metrics). */
  readonly httpUrl: string;
  /** The agent gateway's bound gRPC port (config.grpcPort, or the one picked for 0). */
  readonly grpcPort: number;
  readonly deps: Deps;
  /** The bootstrap admin token, only on the start that created it. */
  readonly bootstrapToken: string | undefined;
  /** The password of the first web user (admin@localhost), only on the start that created it. */
  readonly bootstrapPassword: string | undefined;
  /** This replica among the others on the same database (leadership, messages). */
  readonly cluster: Cluster<GatewayMessage>;
  /** Reads the gateway's TLS files again now (SIGHUP); see AgentGateway.reloadTls. */
  reloadTls(): Promise<boolean>;
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
  /** How often the leader's drainer passes over the drains in progress (default 500 ms). */
  drainIntervalMs?: number;
  /**
   * What every part of this replica reads the time from (default the system clock). Tests pass a
   * ManualClock to cross heartbeat TTLs and grace periods without waiting them out.
   */
  clock?: Clock;
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
  const metrics = createMetrics();
  const database =
    options.database ??
    (await openDatabase<Database>({
      url: config.databaseUrl,
      pgliteDir: config.databaseUrl ? undefined : join(config.dataDir, 'pglite'),
      poolSize: config.dbPoolSize,
      onPoolWait: (seconds) => metrics.dbPoolWait.observe(seconds),
      onPoolError: (err) => logger.warn({ err }, 'a pooled database connection failed; the pool replaces it'),
    }));
  if (database.poolStats) metrics.watchPool(database.poolStats);
  const closers: (() => Promise<void>)[] = options.database ? [] : [() => database.close()];
  // The HTTP listener stops first (no new requests, in-flight ones finish), then the rest in reverse.
  let stopHttp: (() => Promise<void>) | undefined;
  const closeAll = async () => {
    for (const close of [...(stopHttp ? [stopHttp] : []), ...closers.reverse()])
      await close().catch((err: unknown) => logger.error({ err }, 'close failed'));
  };
  try {
    if (config.migrate) {
      const applied = await migrateToLatest(database.db);
      logger.info({ applied, database: database.kind }, 'migrations done');
    } else {
      // Migrated by a separate step (`npm run migrate`, the Kubernetes migration Job): a schema
      // older than this code is refused, a newer one (a later release's Job ran first) accepted.
      const { pending, unknown } = await schemaStatus(database.db);
      if (pending.length > 0) {
        throw new Error(
          `CPHONE_MIGRATE=false but the database lacks ${pending.length} migration(s) of this release (${pending.join(', ')}): run \`npm run migrate\` (the migration Job) first`,
        );
      }
      if (unknown.length > 0) {
        logger.warn({ unknown }, 'the database has migrations of a newer release; running on its schema');
      }
    }
    // Listening before the services exist (they answer 503 until then) so that a port picked by the
    // system (0) is known to the public URL agents download artifacts from.
    let handle: RequestListener = (_request, response) => {
      response.writeHead(503, { 'content-type': 'text/plain' }).end('starting');
    };
    // One port for HTTP/1.1 (browsers, Connect, gRPC-web) and h2c (plain gRPC).
    const server = await listenHttp({
      listener: (request, response) => handle(request, response),
      port: config.httpPort,
      hostname: config.httpHost,
      tls:
        config.httpTlsCertFile && config.httpTlsKeyFile
          ? { cert: await readFile(config.httpTlsCertFile), key: await readFile(config.httpTlsKeyFile) }
          : undefined,
    });
    let ready = true;
    stopHttp = () => {
      ready = false;
      return server.close();
    };
    const address = server.address();
    const publicUrl = new URL(config.publicUrl);
    if (publicUrl.port === '0') {
      publicUrl.port = String(address.port);
      config = Object.freeze({ ...config, publicUrl: publicUrl.href.replace(/\/$/, '') });
    }

    const audit = new AuditWriter({ db: database.db, logger, onDrop: () => metrics.auditRowsDropped.inc() });
    // Closed late: every call has answered (and queued its row) before the last rows are written.
    closers.push(() => audit.flush());
    const base = { config, db: database.db, logger, metrics, clock: options.clock ?? systemClock, audit };
    const cluster = new Cluster<GatewayMessage>({
      ...base,
      openSession: () => database.session(),
      replicaId: newReplicaId(),
      leaderPollMs: options.leaderPollMs,
    });
    await cluster.start();
    closers.push(() => cluster.close());
    const authCache = new AuthCache({
      ttlMs: config.authCacheTtlMs,
      maxEntries: config.authCacheMaxEntries,
      // Heard back before the call that made the change answers: the other replicas hold it too.
      publish: (change) => cluster.publish(undefined, { kind: 'auth', change }, { heard: 1000 }),
      onLookup: (outcome) => metrics.authCache.inc({ outcome }),
      logger,
    });
    const rateLimiter = new RateLimiter({
      db: database.db,
      config,
      logger,
      metrics,
      publish: () => cluster.publish(undefined, { kind: 'rate-limits' }, { heard: 1000 }),
    });
    await rateLimiter.reload();
    const reloadLimits = () =>
      rateLimiter
        .reload()
        .catch((err: unknown) => logger.warn({ err }, 'rate limit overrides: reload failed'));
    cluster.onMessage(({ message }) => {
      if (message.kind === 'auth') authCache.apply(message.change);
      if (message.kind === 'rate-limits') void reloadLimits();
    });
    // Changes told while this replica's session was down were lost with it.
    cluster.onResync(() => {
      authCache.clear();
      void reloadLimits();
    });
    // The planner and the drainer tell the gateway of desired-state changes; the gateway settles
    // the plans its agents' reports apply through the planner: made in that order, linked late.
    let gateway: Awaited<ReturnType<typeof startAgentGateway>> | undefined;
    const desiredChanged = (hostId: string) => gateway?.desiredChanged(hostId);
    // The fleet view follows the host table's change feed on the cluster's session; it reads the
    // fleet now, so the first create does not wait for it.
    const planner = new Planner({ ...base, desiredChanged, feed: clusterFleetFeed(cluster) });
    planner.fleet.ready().catch((err: unknown) => logger.warn({ err }, 'fleet view: first read failed'));
    const streamKeys = await StreamKeys.open(config.streamKeysDir, {
      // The embedded default makes its first key; an operator's folder must hold one.
      create: config.streamKeysDir === join(config.dataDir, 'stream-keys'),
      logger,
      clock: systemClock,
      overlapMs: config.streamKeyOverlapMs,
      reloadMs: 60_000,
    });
    closers.push(async () => streamKeys.close());
    const streams = {
      keys: streamKeys,
      ice: {
        stunUrls: config.stunUrls,
        turnUrls: config.turnUrls,
        turnSecret: config.turnSecret,
        turnTtlSeconds: config.turnTtlSeconds,
      },
    };
    gateway = await startAgentGateway({ ...base, planner, streams }, { cluster, ...options.gateway });
    const drainer = new Drainer({
      ...base,
      planner,
      isLeader: () => cluster.isLeader(),
      desiredChanged,
      intervalMs: options.drainIntervalMs,
    });
    drainer.start();
    // Thresholds of device minutes go out as webhook events (the worker is nudged once it exists).
    let nudgeWebhooks = () => {};
    const minutes = new MinutesEnforcer({
      ...base,
      isLeader: () => cluster.isLeader(),
      desiredChanged,
      intervalMs: config.quotaMinutesIntervalMs,
      announce: announceMinutesThreshold,
      announced: () => nudgeWebhooks(),
    });
    minutes.start();
    // The leader closes each month's statements once the month (and its grace) is over.
    const statementCloser = new StatementCloser({ ...base, isLeader: () => cluster.isLeader() });
    statementCloser.start();
    closers.push(() => statementCloser.close());
    // Raw usage partitions made ahead and, on the leader, dropped past the retention.
    const usageMaintenance = new UsageMaintenance({
      db: database.db,
      logger,
      now: () => base.clock.now(),
      isLeader: () => cluster.isLeader(),
      retentionMonths: config.usageRetentionMonths,
    });
    usageMaintenance.start();
    closers.push(() => usageMaintenance.close());
    const started = gateway;
    // Closed in reverse: the drainer stops, queued plans commit, then the agent streams end.
    closers.push(() => started.close());
    closers.push(() => planner.close());
    closers.push(() => drainer.close().then(() => undefined));
    closers.push(() => minutes.close().then(() => undefined));
    streamKeys.onChange(() => started.streamKeysChanged());
    // Every replica delivers webhooks: claims are row locks taken with SKIP LOCKED, so replicas
    // share the queue without a leader. Closed before the database: attempts in flight are
    // aborted and their outcomes written.
    const webhookSecrets = new SecretBox(
      await loadKeys(config.webhookSecretKeys, join(config.dataDir, 'webhook-secret-key')),
    );
    const webhookPolicy = new TargetPolicy(config.webhookAllowHosts);
    const webhookWorker = new WebhookWorker({ ...base, secrets: webhookSecrets, policy: webhookPolicy });
    webhookWorker.start();
    nudgeWebhooks = () => webhookWorker.nudge();
    closers.push(() => webhookWorker.close());
    metrics.watchWebhookQueue(async () => {
      const row = await database.db
        .selectFrom('webhook_delivery')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('state', '=', 'pending')
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    });
    metrics.watchFleet(async () => {
      const [hosts, devices] = await Promise.all([
        hostCountsByConnection(database.db),
        deviceCountsByState(database.db),
      ]);
      return { hosts, devices };
    });
    const webhooks = { secrets: webhookSecrets, policy: webhookPolicy, nudge: () => webhookWorker.nudge() };
    const deps: Deps = {
      ...base,
      gateway: started,
      planner,
      drainer,
      minutes,
      streams,
      authCache,
      webhooks,
      rateLimiter,
    };
    const bootstrapToken = await bootstrap(database.db, config.dataDir, logger);
    const bootstrapPassword = await bootstrapAdminUser(database.db, config.dataDir, logger);
    usePageTokenKeys(await loadPageTokenKeys(config));

    const { listener, rpcPaths } = createHttpApp({
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
        if (config.consoleDir) mountConsole(hono, config.consoleDir);
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
    handle = listener;
    // Each replica sweeps the uploads staged on its own disk.
    const uploadSweeper = new UploadSweeper(base);
    closers.push(() => uploadSweeper.close());
    const httpUrl = `${config.httpTlsCertFile ? 'https' : 'http'}://${config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost}:${address.port}`;
    logger.info({ httpUrl, grpcPort: started.port, rpcs: rpcPaths.length }, 'control plane listening');
    return {
      httpUrl,
      grpcPort: started.port,
      deps,
      bootstrapToken,
      bootstrapPassword,
      cluster,
      reloadTls: () => started.reloadTls(),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
