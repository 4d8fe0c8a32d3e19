import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { hostname, release } from 'node:os';
import { join } from 'node:path';
import { buildInfo } from '@cphone/proto/version';
import * as grpc from '@grpc/grpc-js';
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { AdbCommandExecutor, AdbPool, type CommandExecutor, FileCredentialStore } from './adb/index.js';
import type { AgentConfig } from './config.js';
import { HostStats } from './host-stats/index.js';
import { createLogger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { PhoneProxy, startNetworkIsolation } from './network/index.js';
import { type BootProbe, DesiredStore, Reconciler, type ReconcilerOptions } from './reconciler/index.js';
import {
  type ContainerRuntime,
  createDockerRuntime,
  createSimRuntime,
  DockerRuntime,
} from './runtime/index.js';
import type { ScrcpyServerBinary } from './screen/index.js';
import { runCommand } from './session/commands.js';
import { Session, type SessionOptions } from './session/session.js';
import { UsageSender } from './session/usage-sender.js';
import { UsageSampler, UsageSpool } from './spool/index.js';
import { Streaming } from './stream/streaming.js';

/** The release this agent reports in its Hello (embedded by the bundle; package.json from source). */
export const AGENT_VERSION: string = buildInfo().version;

/** Seams for tests and embedding; everything unset is built from the config. */
export interface AgentDeps {
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  /** A runtime owned by the caller (not closed by the agent). */
  readonly runtime?: ContainerRuntime;
  readonly bootProbe?: BootProbe;
  readonly executor?: CommandExecutor;
  /** TLS (or test) credentials for the gateway; default: CA file from the config, else system roots. */
  readonly credentials?: grpc.ChannelCredentials;
  readonly reconciler?: Partial<Omit<ReconcilerOptions, 'runtime' | 'bootProbe' | 'logger' | 'onStatus'>>;
  readonly session?: Partial<Pick<SessionOptions, 'backoff' | 'stableAfterMs' | 'welcomeTimeoutMs'>>;
  /** Resend unacknowledged usage after this, ms. */
  readonly usageResendAfterMs?: number;
  /**
   * The scrcpy server file pushed to phones. Default: the pinned release at config.scrcpyServer; on
   * the sim runtime, whose virtual phones run no jar, a stand-in file checked by its own hash.
   */
  readonly scrcpyServer?: ScrcpyServerBinary;
  /** A player page the stream endpoint serves at /view (the embedded default's test player). */
  readonly streamPage?: () => Promise<string>;
}

export interface Agent {
  readonly instanceId: string;
  readonly reconciler: Reconciler;
  readonly session: Session;
  readonly spool: UsageSpool;
  readonly sampler: UsageSampler;
  readonly metrics: Metrics;
  /** Port of the local health and metrics server (127.0.0.1). */
  readonly httpPort: number;
  /** True after a Drain notice on the current run. */
  readonly draining: boolean;
  /** The stream endpoint and sfu; undefined with CPHONE_STREAM=off. */
  readonly streaming: Streaming | undefined;
  /** Closes the session, the HTTP server and the agent's resources. Docker phones keep running; sim phones stop. */
  close(): Promise<void>;
}

/**
 * The gateway's TLS for each connection attempt. CPHONE_CA_FILE is read again at every attempt: a
 * CA rotation puts the old and the new CA in the file (a bundle), and the next reconnect trusts
 * both, with no restart; the stream that is up stays up. A file that cannot be read or holds no
 * valid certificate is logged and the last good bundle kept.
 */
export function channelCredentials(
  config: Pick<AgentConfig, 'caFile'>,
  logger: Logger,
): () => grpc.ChannelCredentials {
  const caFile = config.caFile;
  if (caFile === undefined) {
    const system = grpc.credentials.createSsl(null);
    return () => system;
  }
  let last: { pem: Buffer; credentials: grpc.ChannelCredentials } | undefined;
  return () => {
    try {
      const pem = readFileSync(caFile);
      if (last === undefined || !pem.equals(last.pem)) {
        const subjects = caBundleSubjects(pem);
        if (last !== undefined)
          logger.info({ caFile, subjects }, 'CA bundle changed; the next connection trusts it');
        last = { pem, credentials: grpc.credentials.createSsl(pem) };
      }
    } catch (err) {
      if (last === undefined) throw err;
      logger.warn({ err, caFile }, 'CA bundle not reloaded; the previous one stays in use');
    }
    return last.credentials;
  };
}

/** The subjects of every certificate in a PEM bundle; throws when there is none or one is bad. */
function caBundleSubjects(pem: Buffer): string[] {
  const blocks =
    pem.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM certificate in the CA file');
  return blocks.map((block) => new X509Certificate(block).subject.replace(/\n/g, ', '));
}

async function openRuntime(config: AgentConfig): Promise<ContainerRuntime> {
  if (config.runtime === 'sim') {
    return createSimRuntime({
      dataDir: join(config.dataDir, 'sim'),
      bootDelayMs: config.simBootDelayMs,
      scope: config.runtimeScope,
    });
  }
  return createDockerRuntime({ socketPath: config.dockerSocket, config: { scope: config.runtimeScope } });
}

/** The stand-in server file virtual phones are given (they emulate the server; nothing runs it). */
async function virtualPhoneServer(dataDir: string): Promise<ScrcpyServerBinary> {
  const bytes = Buffer.from('PK\x03\x04 cphone virtual phone: the scrcpy server is emulated\n');
  const path = join(dataDir, 'scrcpy-server-virtual-phone');
  await writeFile(path, bytes);
  return { path, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** Starts a host agent: adopts the runtime's phones, connects to the control plane, meters usage. */
export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<Agent> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const metrics = deps.metrics ?? createMetrics();
  const instanceId = randomUUID();
  const log = logger.child({ module: 'agent', hostId: config.hostId, instanceId });
  await mkdir(config.dataDir, { recursive: true });

  const runtime = deps.runtime ?? (await openRuntime(config));
  // Isolation (per-tenant bridges, the agent's firewall, egress metering) guards the docker runtime
  // the agent opens itself; a runtime handed in by a caller is the caller's.
  const isolation =
    deps.runtime === undefined && runtime instanceof DockerRuntime && config.network.enabled
      ? await startNetworkIsolation(config.network, runtime, logger)
      : undefined;
  let pool: AdbPool | undefined;
  let bootProbe = deps.bootProbe;
  let executor = deps.executor;
  if (bootProbe === undefined || executor === undefined) {
    pool = new AdbPool({
      credentialStore: await FileCredentialStore.open({ dataDir: config.dataDir }),
      logger,
    });
    bootProbe ??= pool;
    executor ??= new AdbCommandExecutor({
      pool,
      credential: config.credential,
      workDir: join(config.dataDir, 'artifacts'),
      logger,
    });
  }

  const proxy =
    config.network.httpProxy !== undefined && pool !== undefined
      ? new PhoneProxy({
          proxy: config.network.httpProxy,
          endpoint: (deviceId) => reconciler.adbEndpoint(deviceId),
          shell: (endpoint, command) => (pool as AdbPool).device(endpoint).shell(command),
          logger: log,
        })
      : undefined;
  let session: Session | undefined;
  let streaming: Streaming | undefined;
  const reconciler = new Reconciler({
    concurrency: config.reconcileConcurrency,
    stopTimeoutMs: config.stopTimeoutMs,
    bootTimeoutMs: config.bootTimeoutMs,
    ...deps.reconciler,
    runtime,
    bootProbe,
    logger,
    metrics,
    store: new DesiredStore(config.dataDir),
    onStatus: (device) => {
      session?.send({ body: { case: 'deviceStatus', value: { device } } });
      streaming?.deviceChanged(device);
      void proxy?.deviceChanged(device);
    },
  });
  const spool = await UsageSpool.open({ dir: join(config.dataDir, 'usage') });
  const usage = new UsageSender({
    spool,
    logger: log,
    ...(deps.usageResendAfterMs !== undefined ? { resendAfterMs: deps.usageResendAfterMs } : {}),
  });
  const sampler = new UsageSampler({
    spool,
    intervalMs: config.usageIntervalMs,
    devices: () => reconciler.metered(),
    ...(isolation !== undefined ? { egress: (ids: readonly string[]) => isolation.takeEgress(ids) } : {}),
    onAppended: (samples) => {
      metrics.usageSequence.set(spool.lastSequence);
      usage.appended(samples);
    },
    logger: log,
  });
  const stats = new HostStats({ dataDir: config.dataDir });
  let draining = false;

  await reconciler.start();
  sampler.start();

  if (config.stream.enabled) {
    pool ??= new AdbPool({
      credentialStore: await FileCredentialStore.open({ dataDir: config.dataDir }),
      logger,
    });
    const adb = pool;
    try {
      streaming = await Streaming.start({
        config,
        phones: reconciler,
        device: (endpoint) => adb.device(endpoint),
        server:
          deps.scrcpyServer ??
          (config.runtime === 'sim'
            ? await virtualPhoneServer(config.dataDir)
            : { path: config.scrcpyServer }),
        send: (report) => session?.send({ body: report }) ?? false,
        logger,
        registry: metrics.registry,
        ...(deps.streamPage !== undefined ? { page: deps.streamPage } : {}),
      });
    } catch (error) {
      await sampler.stop();
      await reconciler.close();
      await spool.close();
      await pool?.close();
      await isolation?.close();
      if (deps.runtime === undefined) await runtime.close();
      throw error;
    }
  }

  session = new Session({
    address: config.controlPlane,
    credentials: deps.credentials ?? channelCredentials(config, log),
    ...(config.tlsServerName !== undefined
      ? {
          channelOptions: {
            'grpc.ssl_target_name_override': config.tlsServerName,
            'grpc.default_authority': config.tlsServerName,
          },
        }
      : {}),
    ...deps.session,
    logger,
    metrics,
    hooks: {
      async hello() {
        const capacity = await stats.capacity();
        const o = config.capacity;
        return {
          hostId: config.hostId,
          credential: config.credential,
          protocolVersion: 1,
          agentVersion: AGENT_VERSION,
          arch: config.arch,
          hostname: hostname(),
          capacity: {
            vcpuMillicores: BigInt(o.vcpuMillicores ?? capacity.vcpuMillicores),
            memoryBytes:
              o.memoryMib !== undefined ? BigInt(o.memoryMib) * 1024n * 1024n : BigInt(capacity.memoryBytes),
            storageBytes:
              o.storageGib !== undefined ? BigInt(o.storageGib) * 1024n ** 3n : BigInt(capacity.storageBytes),
            devices: config.maxDevices,
          },
          labels: { ...config.labels },
          runtimeKind: runtime.name,
          devices: reconciler.inventory(),
          desiredRevision: reconciler.desiredRevision,
          agentInstanceId: instanceId,
          kernelVersion: release(),
          streamEndpoint: streaming?.endpoint ?? '',
        };
      },
      async load() {
        usage.tick();
        metrics.usagePending.set(spool.pendingCount);
        if (pool !== undefined) void pool.retain(reconciler.liveEndpoints()).catch(() => undefined);
        const s = await stats.sample();
        return {
          cpuPercent: s.cpuPercent,
          loadAverage1m: s.loadAverage1m,
          memoryUsedBytes: BigInt(s.memoryUsedBytes),
          memoryTotalBytes: BigInt(s.memoryTotalBytes),
          diskUsedBytes: BigInt(s.diskUsedBytes),
          diskTotalBytes: BigInt(s.diskTotalBytes),
          runningDevices: reconciler.runningCount(),
        };
      },
      async welcomed(welcome, link) {
        draining = false;
        streaming?.setKeys(welcome.streamTokenKeys);
        await usage.welcomed(link, Number(welcome.usageAckSequence));
        streaming?.welcomed();
      },
      received(message, link) {
        const fail = (what: string) => (err: unknown) => log.error({ err }, `${what} failed`);
        switch (message.body.case) {
          case 'desiredDevices':
            void reconciler.applyDesired(message.body.value).catch(fail('applying the desired set'));
            break;
          case 'deviceUpsert':
            void reconciler.applyUpsert(message.body.value).catch(fail('applying a device upsert'));
            break;
          case 'deviceRemove':
            void reconciler.applyRemove(message.body.value).catch(fail('applying a device remove'));
            break;
          case 'usageAck':
            void usage.acknowledged(Number(message.body.value.sequence)).catch(fail('acknowledging usage'));
            break;
          case 'command': {
            const command = message.body.value;
            const kind = command.kind.case ?? 'unknown';
            const end = metrics.commandDuration.startTimer({ kind });
            void runCommand(command, { executor, devices: reconciler, signal: link.signal }).then(
              (result) => {
                end();
                metrics.commands.inc({ kind, code: String(result.code ?? 0) });
                link.send({ body: { case: 'commandResult', value: result } });
              },
            );
            break;
          }
          case 'streamKeys':
            streaming?.setKeys(message.body.value.keys);
            break;
          case 'streamRevocation':
            streaming?.revoke(message.body.value);
            break;
          case 'drain':
            draining = true;
            metrics.drains.inc();
            log.warn({ reason: message.body.value.reason }, 'host is being drained');
            break;
          default:
            log.warn({ kind: message.body.case }, 'unexpected control message ignored');
        }
      },
    },
  });

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const body = { connected: session.connected, draining, devices: reconciler.runningCount() };
    return c.json(body, session.connected ? 200 : 503);
  });
  app.get('/metrics', async (c) =>
    c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  );
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: config.httpPort, hostname: config.httpBind }, () => resolve(s));
  });
  const httpPort = (server.address() as AddressInfo).port;

  session.start();
  log.info({ runtime: runtime.name, httpPort, controlPlane: config.controlPlane }, 'agent started');

  let closing: Promise<void> | undefined;
  const activeSession = session;
  return {
    instanceId,
    reconciler,
    session: activeSession,
    spool,
    sampler,
    metrics,
    httpPort,
    get draining() {
      return draining;
    },
    streaming,
    close() {
      closing ??= (async () => {
        // Docker's phones are the engine's and outlive the agent; the sim runtime's are its children.
        log.info(
          config.runtime === 'sim' && deps.runtime === undefined
            ? 'agent stopping; its virtual phones (sim runtime) stop with it'
            : 'agent stopping; phones keep running',
        );
        // Viewers first: they are told the agent is going (1001) and their ENDED reports still go out.
        await streaming?.close();
        await activeSession.close();
        await sampler.stop();
        await reconciler.close();
        await spool.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await pool?.close();
        await isolation?.close();
        if (deps.runtime === undefined) await runtime.close();
        log.info('agent stopped');
      })();
      return closing;
    },
  };
}
