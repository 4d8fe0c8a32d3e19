// `cphone up` (`npm start`): the embedded platform on one machine. The control plane on PGlite
// (data in ./.data) serving the web console at /, one host agent with the `sim` runtime enrolled on
// it, and a handful of virtual phones that speak real ADB (their addresses are printed for `adb
// connect`) and stream (a link to the agent's test player is printed for each). A second start reuses
// the data: the same host, the same phones. Stops cleanly on SIGTERM/SIGINT; phones are the sim
// runtime's, so they stop with the process and come back on the next start.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
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
    const live = list.filter((d) => d.state !== DeviceState.DELETED);
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
  for (const d of list.filter((x) => x.state === DeviceState.RUNNING)) {
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
): Promise<EmbeddedPlatform & { phones: string[]; players: string[] }> {
  // The web console, built when its sources changed (a few seconds), served at / unless
  // CPHONE_CONSOLE_DIR names another build.
  const consoleDir = env.CPHONE_CONSOLE_DIR ? undefined : await ensureConsoleBuilt();
  const config = loadConfig(env, {
    ...(env.CPHONE_GRPC_HOST ? {} : { grpcHost: '127.0.0.1' }),
    ...(consoleDir ? { consoleDir } : {}),
  });
  const logger = createLogger(config.logLevel);
  const agentDir = resolve(env.CPHONE_AGENT_DATA_DIR || join(config.dataDir, '..', 'agent'));
  const plane = await startControlPlane(config, { logger });
  let agent: Agent | undefined;
  try {
    const token = plane.bootstrapToken ?? (await readOptional(join(config.dataDir, 'bootstrap-admin-key')));
    if (!token)
      throw new Error(
        `no admin key in ${config.dataDir}/bootstrap-admin-key: remove the data dir to start afresh`,
      );
    const admin = bearerTransport(plane.httpUrl, token);
    const host = await enrollLocalHost(admin, agentDir);
    agent = await startAgent(
      loadAgentConfig({
        CPHONE_HOST_ID: host.hostId,
        CPHONE_HOST_CREDENTIAL: host.credential,
        CPHONE_CONTROL_PLANE: `localhost:${plane.grpcPort}`,
        CPHONE_CA_FILE: join(config.dataDir, 'tls', 'ca.pem'),
        CPHONE_RUNTIME: 'sim',
        CPHONE_AGENT_DATA_DIR: agentDir,
        CPHONE_AGENT_HTTP_PORT: env.CPHONE_AGENT_HTTP_PORT ?? '9102',
        CPHONE_LABELS: 'zone=local,runtime=sim',
        CPHONE_LOG_LEVEL: config.logLevel,
        CPHONE_SIM_BOOT_DELAY_MS: env.CPHONE_SIM_BOOT_DELAY_MS ?? '1000',
        // Streams on this machine only: signaling and WebRTC on loopback, the signaling in plain ws
        // so a browser here plays without accepting a self-signed certificate (it would refuse the
        // WebSocket silently). Production keeps wss.
        CPHONE_STREAM_BIND: '127.0.0.1',
        CPHONE_STREAM_TLS: 'off',
        CPHONE_STREAM_PORT: env.CPHONE_STREAM_PORT ?? '4443',
        CPHONE_RTC_LISTEN_IP: '127.0.0.1',
        CPHONE_RTC_PORT: env.CPHONE_RTC_PORT ?? '40000',
        CPHONE_SFU_WORKERS: '1',
      }),
      { logger, streamPage: playerPageHtml },
    );
    await waitForHostReady(admin, host.hostId);
    await ensurePhones(admin);
    const phones = await waitForPhones(admin, logger);
    const players = await playerLinks(admin);
    const started = agent;
    return {
      plane,
      agent: started,
      phones,
      players,
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

export async function up(_options: { logsToStderr?: boolean } = {}): Promise<void> {
  const platform = await startEmbedded();
  const { plane } = platform;
  process.stdout.write(
    [
      '',
      `cphone is up: ${plane.httpUrl}`,
      `  console  ${plane.httpUrl}/  sign in as admin@localhost, password in ${plane.deps.config.dataDir}/bootstrap-admin-password`,
      ...(plane.bootstrapPassword
        ? [`           (first start: the password is ${plane.bootstrapPassword})`]
        : []),
      `  API      ${plane.httpUrl} (Connect, gRPC-Web, gRPC); admin key in ${plane.deps.config.dataDir}/bootstrap-admin-key${plane.bootstrapToken ? ' (created now)' : ''}`,
      `  health   ${plane.httpUrl}/healthz   metrics ${plane.httpUrl}/metrics`,
      `  agents   gRPC/TLS on port ${plane.grpcPort}; local agent health http://127.0.0.1:${platform.agent.httpPort}/healthz`,
      '  phones:',
      ...platform.phones.map((p) => `    ${p}`),
      '  each phone alone in the test player (links valid for 24 h):',
      ...platform.players.map((p) => `    ${p}`),
      '',
    ].join('\n'),
  );
  let stopping = false;
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        if (stopping) return;
        stopping = true;
        platform.close().finally(resolve);
      });
    }
  });
}
