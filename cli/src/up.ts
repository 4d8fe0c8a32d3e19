// `cphone up` (`npm start`): the embedded platform on one machine. The control plane on PGlite
// (data in ./.data) serving the web console at /, one host agent with the `sim` runtime enrolled on
// it, and a handful of virtual phones that speak real ADB (their addresses are printed for `adb
// connect`) and stream (the console plays them; a link to the agent's test player is returned for
// each). A second start reuses the data: the same host, the same phones. It also adds the context
// "embedded" to the CLI's config, so `npx cphone` works at once. Stops cleanly on SIGTERM/SIGINT;
// phones are the sim runtime's, so they stop with the process and come back on the next start.
//
// On a terminal it prints a short summary; the JSON logs go to .data/logs/cphone.log (and to
// stderr as well with --logs). A port already taken is one sentence naming the setting to change.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Code, ConnectError, createClient, type Transport } from '@connectrpc/connect';
import {
  bearerTransport,
  type ControlPlane,
  createLogger,
  type Logger,
  loadConfig,
  startControlPlane,
} from '@cphone/control-plane';
import { type Agent, loadConfig as loadAgentConfig, startAgent } from '@cphone/host-agent';
import {
  DeviceService,
  DeviceState,
  HostService,
  HostState,
  ImageService,
  StreamRights,
} from '@cphone/proto';
import { playerPageHtml } from '@cphone/sfu/testing';
import { ensureConsoleBuilt } from '@cphone/web/build';
import pino from 'pino';
import { configPath, readConfig, upsertContext, writeConfig } from './lib/config.js';

/** How many phones the embedded default creates on its first start. */
const DEFAULT_PHONES = 3;
const IMAGE_ID = 'virtual-android-12';

async function readOptional(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').then(
    (text) => text.trim() || undefined,
    () => undefined,
  );
}

/** The local host's enrollment, kept in the agent's data dir (credential file 0600). */
async function enrollLocalHost(
  transport: Transport,
  agentDir: string,
): Promise<{ hostId: string; credential: string }> {
  const idFile = join(agentDir, 'host-id');
  const credentialFile = join(agentDir, 'host-credential');
  const [hostId, credential] = await Promise.all([readOptional(idFile), readOptional(credentialFile)]);
  const hosts = createClient(HostService, transport);
  if (hostId && credential) {
    const known = await hosts.getHost({ hostId }).then(
      () => true,
      (e: unknown) => (ConnectError.from(e).code === Code.NotFound ? false : Promise.reject(e)),
    );
    if (known) return { hostId, credential };
  }
  const enrolled = await hosts.enrollHost({
    name: `local-${hostname()}-${Date.now().toString(36)}`,
    arch: process.arch === 'arm64' ? 'arm64' : 'amd64',
    labels: { zone: 'local', runtime: 'sim' },
    overcommit: { cpu: 4, memory: 2 },
  });
  const id = enrolled.host?.hostId ?? '';
  await mkdir(agentDir, { recursive: true, mode: 0o700 });
  await writeFile(idFile, `${id}\n`);
  await writeFile(credentialFile, `${enrolled.credential}\n`, { mode: 0o600 });
  await chmod(credentialFile, 0o600);
  return { hostId: id, credential: enrolled.credential };
}

/** On the first start: a public image and a few phones (idempotent by request id). */
async function ensurePhones(transport: Transport): Promise<void> {
  const images = createClient(ImageService, transport);
  await images
    .createImage({
      imageId: IMAGE_ID,
      requestId: `cphone-up-${IMAGE_ID}`,
      image: {
        displayName: 'Android 12 (virtual phone)',
        containerImage: 'redroid/redroid:12.0.0_64only-latest',
        androidVersion: '12',
        sdkLevel: 31,
        archs: ['arm64', 'amd64'],
        defaultSpec: {
          vcpuMillicores: 1000,
          memoryMib: 2048,
          storageGib: 8,
          screen: { widthPx: 720, heightPx: 1280, dpi: 320, fps: 30 },
        },
      },
    })
    .catch((e: unknown) =>
      ConnectError.from(e).code === Code.AlreadyExists ? undefined : Promise.reject(e),
    );
  await createClient(DeviceService, transport).batchCreateDevices({
    requestId: 'cphone-up-default-phones',
    requests: Array.from({ length: DEFAULT_PHONES }, (_, i) => ({
      displayName: `phone ${i + 1}`,
      labels: { embedded: 'true' },
      spec: { imageId: IMAGE_ID },
    })),
  });
}

/** The agent has said Hello: the host can take phones. */
async function waitForHostReady(transport: Transport, hostId: string, timeoutMs = 30_000): Promise<void> {
  const hosts = createClient(HostService, transport);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { host } = await hosts.getHost({ hostId });
    if (host?.state === HostState.READY) return;
    if (Date.now() > deadline) {
      throw new Error(`host ${hostId} is ${HostState[host?.state ?? 0]}, not READY, after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitForPhones(transport: Transport, logger: Logger, timeoutMs = 60_000): Promise<string[]> {
  const devices = createClient(DeviceService, transport);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { devices: list } = await devices.listDevices({ pageSize: 100 });
    // Oldest first, as they were made ("phone 1", "phone 2" …); the API lists newest first.
    const live = list.filter((d) => d.state !== DeviceState.DELETED).reverse();
    if (live.every((d) => d.state === DeviceState.RUNNING) || Date.now() > deadline) {
      return live.map(
        (d) =>
          `${d.deviceId}  ${DeviceState[d.state]?.toLowerCase()}  adb ${d.adbEndpoint || '-'}  ${d.displayName}`,
      );
    }
    logger.debug({ states: live.map((d) => DeviceState[d.state]) }, 'waiting for the phones to boot');
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** A day-long CONTROL session per running phone, as a link to the agent's test player. */
async function playerLinks(transport: Transport): Promise<string[]> {
  const devices = createClient(DeviceService, transport);
  const { devices: list } = await devices.listDevices({ pageSize: 100 });
  const links: string[] = [];
  for (const d of list.filter((x) => x.state === DeviceState.RUNNING).reverse()) {
    const { streamSession: s } = await devices.createStreamSession({
      deviceId: d.deviceId,
      rights: StreamRights.CONTROL,
      ttlSeconds: 86_400,
    });
    if (!s?.sfuUrl) continue;
    const url = new URL(s.sfuUrl);
    links.push(
      `${d.deviceId}  ${url.protocol === 'ws:' ? 'http' : 'https'}://${url.host}/view#token=${s.token}`,
    );
  }
  return links;
}

export interface EmbeddedPlatform {
  plane: ControlPlane;
  agent: Agent;
  close(): Promise<void>;
}

/** Starts the embedded platform and returns once the phones run (or a minute has passed). */
export async function startEmbedded(
  env: NodeJS.ProcessEnv = process.env,
  options: { logger?: Logger } = {},
): Promise<EmbeddedPlatform & { phones: string[]; players: string[]; context: string | undefined }> {
  // The web console, built when its sources changed (a few seconds), served at / unless
  // CPHONE_CONSOLE_DIR names another build.
  const consoleDir = env.CPHONE_CONSOLE_DIR ? undefined : await ensureConsoleBuilt();
  const config = loadConfig(env, {
    ...(env.CPHONE_GRPC_HOST ? {} : { grpcHost: '127.0.0.1' }),
    ...(consoleDir ? { consoleDir } : {}),
    // Webhooks to receivers on this machine (a script beside the embedded platform), over http://.
    ...(env.CPHONE_WEBHOOK_ALLOW_HOSTS === undefined
      ? { webhookAllowHosts: ['127.0.0.1', '::1', 'localhost'] }
      : {}),
  });
  const logger = options.logger ?? createLogger(config.logLevel);
  const agentDir = resolve(env.CPHONE_AGENT_DATA_DIR || join(config.dataDir, '..', 'agent'));
  // The ports this start binds, by the setting that moves each (a port in use names its setting).
  const agentPorts = {
    CPHONE_AGENT_HTTP_PORT: env.CPHONE_AGENT_HTTP_PORT ?? '9102',
    CPHONE_STREAM_PORT: env.CPHONE_STREAM_PORT ?? '4443',
    CPHONE_RTC_PORT: env.CPHONE_RTC_PORT ?? '40000',
  };
  const ports = { CPHONE_HTTP_PORT: config.httpPort, CPHONE_GRPC_PORT: config.grpcPort, ...agentPorts };
  const plane = await startControlPlane(config, { logger }).catch((e: unknown) =>
    Promise.reject(portInUse(e, ports) ?? e),
  );
  let agent: Agent | undefined;
  try {
    const token = plane.bootstrapToken ?? (await readOptional(join(config.dataDir, 'bootstrap-admin-key')));
    if (!token)
      throw new Error(
        `no admin key in ${config.dataDir}/bootstrap-admin-key: remove the data dir to start afresh`,
      );
    const admin = bearerTransport(plane.httpUrl, token);
    const host = await enrollLocalHost(admin, agentDir);
    const started: Agent = await startAgent(
      loadAgentConfig({
        CPHONE_HOST_ID: host.hostId,
        CPHONE_HOST_CREDENTIAL: host.credential,
        CPHONE_CONTROL_PLANE: `localhost:${plane.grpcPort}`,
        CPHONE_CA_FILE: join(config.dataDir, 'tls', 'ca.pem'),
        CPHONE_RUNTIME: 'sim',
        CPHONE_AGENT_DATA_DIR: agentDir,
        ...agentPorts,
        CPHONE_LABELS: 'zone=local,runtime=sim',
        CPHONE_LOG_LEVEL: config.logLevel,
        CPHONE_SIM_BOOT_DELAY_MS: env.CPHONE_SIM_BOOT_DELAY_MS ?? '1000',
        // Streams on this machine only: signaling and WebRTC on loopback, the signaling in plain ws
        // so a browser here plays without accepting a self-signed certificate (it would refuse the
        // WebSocket silently). Production keeps wss.
        CPHONE_STREAM_BIND: '127.0.0.1',
        CPHONE_STREAM_TLS: 'off',
        CPHONE_RTC_LISTEN_IP: '127.0.0.1',
        CPHONE_SFU_WORKERS: '1',
      }),
      { logger, streamPage: playerPageHtml },
    ).catch((e: unknown) => Promise.reject(portInUse(e, ports) ?? e));
    agent = started;
    await waitForHostReady(admin, host.hostId);
    await ensurePhones(admin);
    const phones = await waitForPhones(admin, logger);
    const players = await playerLinks(admin);
    const context = await addEmbeddedContext(env, plane.httpUrl, join(config.dataDir, 'bootstrap-admin-key'));
    return {
      plane,
      agent: started,
      phones,
      players,
      context,
      close: async () => {
        await started.close();
        await plane.close();
      },
    };
  } catch (error) {
    await agent?.close();
    await plane.close();
    throw error;
  }
}

/** A port already taken, as one sentence naming the setting that moves it (undefined otherwise). */
export function portInUse(
  error: unknown,
  ports: Readonly<Record<string, string | number>>,
): Error | undefined {
  const e = error as NodeJS.ErrnoException & { port?: number; address?: string };
  if (e?.code !== 'EADDRINUSE') return undefined;
  const port = e.port ?? Number(/:(\d+)\s*$/.exec(e.message)?.[1]);
  const setting = Object.entries(ports).find(([, value]) => Number(value) === port)?.[0];
  return new Error(
    `port ${port} on ${e.address ?? 'this machine'} is already in use (another cphone up, or another program)${
      setting ? `: stop it, or start with ${setting}=<free port> npm start` : ''
    }`,
  );
}

/**
 * The context "embedded" in the CLI's config (its key file is the bootstrap admin's), made current
 * when no context is. Returns its name, or undefined when the config could not be written.
 */
async function addEmbeddedContext(
  env: NodeJS.ProcessEnv,
  server: string,
  keyFile: string,
): Promise<string | undefined> {
  try {
    const path = configPath(env);
    const file = await readConfig(path);
    upsertContext(file, 'embedded', { server, 'key-file': keyFile });
    file['current-context'] ??= 'embedded';
    await writeConfig(path, file);
    return file['current-context'];
  } catch {
    return undefined;
  }
}

export async function up(options: { logsToStderr?: boolean } = {}): Promise<void> {
  const dataRoot = resolve(process.env.CPHONE_DATA_DIR ? join(process.env.CPHONE_DATA_DIR, '..') : '.data');
  const logFile = join(dataRoot, 'logs', 'cphone.log');
  await mkdir(dirname(logFile), { recursive: true });
  const level = process.env.CPHONE_LOG_LEVEL || 'info';
  const toFile = pino.destination({ dest: logFile, append: true, sync: false });
  const logger: Logger = pino(
    { level, base: { service: 'cphone-up' }, timestamp: pino.stdTimeFunctions.isoTime },
    options.logsToStderr
      ? pino.multistream([
          { stream: toFile, level },
          { stream: process.stderr, level },
        ])
      : toFile,
  ) as unknown as Logger;
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(
    `starting cphone (logs: ${relativeTo(logFile)}${options.logsToStderr ? ', and here' : '; add --logs to see them here'})`,
  );
  let platform: Awaited<ReturnType<typeof startEmbedded>>;
  try {
    platform = await startEmbedded(process.env, { logger });
  } catch (error) {
    logger.error({ err: error }, 'cphone up failed');
    toFile.flushSync();
    process.stderr.write(
      `cphone up failed: ${(error as Error).message}\n(details in ${relativeTo(logFile)})\n`,
    );
    process.exitCode = 1;
    return;
  }
  const { plane } = platform;
  const dataDir = plane.deps.config.dataDir;
  say(
    [
      '',
      `cphone is up: ${plane.httpUrl}`,
      `  console   ${plane.httpUrl}/   sign in as admin@localhost, password in ${relativeTo(dataDir)}/bootstrap-admin-password`,
      ...(plane.bootstrapPassword
        ? [`            (first start: the password is ${plane.bootstrapPassword})`]
        : []),
      `  CLI       npx cphone devices get${platform.context === 'embedded' ? '' : '   (after: npx cphone config use-context embedded)'}`,
      `  API       ${plane.httpUrl} (Connect, gRPC-Web, gRPC), admin key in ${relativeTo(dataDir)}/bootstrap-admin-key${plane.bootstrapToken ? ' (created now)' : ''}`,
      `  health    ${plane.httpUrl}/healthz   metrics ${plane.httpUrl}/metrics`,
      `  agents    gRPC/TLS on port ${plane.grpcPort}; local agent health http://127.0.0.1:${platform.agent.httpPort}/healthz`,
      '  phones    (adb connect ADDRESS uses your adb server on port 5037; adb -P PORT for another one)',
      ...platform.phones.map((p) => `    ${p}`),
      '',
      'Ctrl-C stops the platform; the virtual phones stop with it and come back on the next start.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  await new Promise<void>((done) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        if (stopping) return;
        stopping = true;
        say('\nstopping cphone (the virtual phones stop with it) …');
        platform
          .close()
          .then(() => say('stopped.'))
          .finally(() => {
            toFile.flushSync();
            done();
          });
      });
    }
  });
}

function relativeTo(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}
