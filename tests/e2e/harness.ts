// End-to-end harness: the real control plane (PostgreSQL with DATABASE_URL, else PGlite in its data
// dir), the real public API through a Connect client, and real host agents enrolled through
// HostService.EnrollHost and connected over gRPC/TLS. The first start binds port 0 and a restart
// binds the gRPC port the first start got (agents are configured with it); data dirs stay, so a
// control plane or an agent can be stopped and started again in place.
//
// The control plane's clock is a ManualClock that runs with the wall clock (agents judge deadlines
// by theirs) and that a test moves forward to cross a heartbeat TTL or a lost grace at once. The
// TTL and the grace are long by default, so that on a loaded machine no host goes unreachable
// unless a test moves the clock on purpose.
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient } from '@connectrpc/connect';
import { type ControlPlane, loadConfig, startControlPlane } from '@cphone/control-plane';
import {
  bearerTransport,
  checkLiveness,
  createTestDatabase,
  ManualClock,
  type TestDatabase,
} from '@cphone/control-plane/testing';
import { type Agent, type AgentDeps, loadConfig as loadAgentConfig, startAgent } from '@cphone/host-agent';
import { createSimRuntime, launchVirtualPhone, type VirtualPhone } from '@cphone/host-agent/testing';
import {
  type Device,
  DeviceService,
  DeviceState,
  type Host,
  HostService,
  HostState,
  ImageService,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';

export const silent = pino({ level: 'silent' });
export const TENANT_KIND_RESELLER = TenantKind.RESELLER;

export interface HarnessOptions {
  heartbeatIntervalMs?: number;
  heartbeatTtlMs?: number;
  lostGraceMs?: number;
  /** TURN servers handed out by CreateStreamSession, with coturn's static-auth-secret. Default: none. */
  turn?: { urls: string[]; secret: string };
  /** A built web console to serve at / (web/src/build.ts). Default: none. */
  consoleDir?: string;
  /** Webhook targets allowed although on loopback (CPHONE_WEBHOOK_ALLOW_HOSTS). Default: none. */
  webhookAllowHosts?: string[];
}

export interface AgentOptions {
  env?: Record<string, string>;
  deps?: AgentDeps;
}

export interface Harness {
  readonly plane: ControlPlane;
  /** The control plane's clock (it survives restarts): move it to cross a TTL or a grace. */
  readonly clock: ManualClock;
  /** Runs one liveness pass of the running control plane now, at the clock's time. */
  checkLiveness(): Promise<void>;
  readonly hostId: string;
  readonly tenantId: string;
  readonly imageId: string;
  readonly agentDataDir: string;
  /** The bootstrap admin's API key (the platform's own tenant). */
  readonly token: string;
  readonly devices: Client<typeof DeviceService>;
  readonly hosts: Client<typeof HostService>;
  client<S extends DescService>(service: S): Client<S>;
  /** The agent's environment for the enrolled host (sim runtime, the harness's data dir), plus `extra`. */
  agentEnv(extra?: Record<string, string>): Record<string, string>;
  /** Starts a real agent for the enrolled host on the harness's agent data dir. */
  startAgent(options?: AgentOptions): Promise<Agent>;
  /** Stops the control plane and starts it again on the same database, data dir and ports. */
  restartPlane(): Promise<void>;
  stopPlane(): Promise<void>;
  startPlane(): Promise<void>;
  /** Creates one phone through the API; returns it as created. */
  createPhone(name: string): Promise<Device>;
  device(deviceId: string): Promise<Device>;
  waitForState(deviceId: string, state: DeviceState, timeoutMs?: number): Promise<Device>;
  waitForHost(state: HostState, connected: boolean, timeoutMs?: number): Promise<Host>;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-e2e-cp-'));
  const agentDataDir = await mkdtemp(join(tmpdir(), 'cphone-e2e-agent-'));
  const external: TestDatabase<unknown> | undefined = process.env.DATABASE_URL
    ? await createTestDatabase({ kind: 'postgres' })
    : undefined;
  const clock = new ManualClock({ ticking: true });
  const settings = {
    dataDir,
    databaseUrl: external?.url,
    httpPort: 0,
    grpcHost: '127.0.0.1',
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 300,
    heartbeatTtlMs: options.heartbeatTtlMs ?? 60_000,
    lostGraceMs: options.lostGraceMs ?? 60_000,
    ...(options.turn ? { turnUrls: options.turn.urls, turnSecret: options.turn.secret } : {}),
    ...(options.consoleDir ? { consoleDir: options.consoleDir } : {}),
    ...(options.webhookAllowHosts
      ? { webhookAllowHosts: options.webhookAllowHosts, webhookPollMs: 100 }
      : {}),
  };
  let plane: ControlPlane | undefined = await startControlPlane(
    loadConfig({}, { ...settings, grpcPort: 0 }),
    {
      logger: silent,
      clock,
    },
  );
  const grpcPort = plane.grpcPort;
  const config = loadConfig({}, { ...settings, grpcPort });
  const token = plane.bootstrapToken;
  if (token === undefined) throw new Error('the first start gives the bootstrap token');

  const client = <S extends DescService>(service: S): Client<S> => {
    if (plane === undefined) throw new Error('the control plane is stopped');
    return createClient(service, bearerTransport(plane.httpUrl, token));
  };
  let devices = client(DeviceService);
  let hosts = client(HostService);

  const enrolled = await hosts.enrollHost({ name: 'e2e-host', arch: 'arm64', labels: { pool: 'e2e' } });
  const hostId = enrolled.host?.hostId ?? '';
  const credential = enrolled.credential;
  const tenant = await client(TenantService).createTenant({
    kind: TenantKind.RESELLER,
    displayName: 'e2e reseller',
  });
  const tenantId = tenant.tenant?.tenantId ?? '';
  const imageId = 'android-14-e2e';
  await client(ImageService).createImage({
    imageId,
    image: {
      displayName: 'Android 14',
      containerImage: 'redroid/redroid:14.0.0_64only-latest',
      archs: ['arm64'],
      defaultSpec: { vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
      minMemoryMib: 512,
    },
  });

  const agents = new Set<Agent>();
  const harness: Harness = {
    get plane() {
      if (plane === undefined) throw new Error('the control plane is stopped');
      return plane;
    },
    clock,
    checkLiveness: () => checkLiveness(harness.plane),
    hostId,
    tenantId,
    imageId,
    agentDataDir,
    token,
    get devices() {
      return devices;
    },
    get hosts() {
      return hosts;
    },
    client,
    agentEnv: (extra = {}) => ({
      CPHONE_HOST_ID: hostId,
      CPHONE_HOST_CREDENTIAL: credential,
      CPHONE_CONTROL_PLANE: `localhost:${grpcPort}`,
      CPHONE_CA_FILE: join(dataDir, 'tls', 'ca.pem'),
      CPHONE_RUNTIME: 'sim',
      CPHONE_RUNTIME_SCOPE: `e2e-${hostId}`,
      CPHONE_AGENT_DATA_DIR: agentDataDir,
      CPHONE_AGENT_HTTP_PORT: '0',
      CPHONE_STREAM_BIND: '127.0.0.1',
      CPHONE_STREAM_PORT: '0',
      CPHONE_RTC_LISTEN_IP: '127.0.0.1',
      CPHONE_RTC_PORT: '0',
      CPHONE_SFU_WORKERS: '1',
      CPHONE_STREAM_ROOM_GRACE_MS: '1000',
      CPHONE_ARCH: 'arm64',
      CPHONE_CAPACITY_VCPU_MILLICORES: '16000',
      CPHONE_CAPACITY_MEMORY_MIB: '32768',
      CPHONE_CAPACITY_STORAGE_GIB: '200',
      CPHONE_BOOT_TIMEOUT_MS: '20000',
      CPHONE_STOP_TIMEOUT_MS: '2000',
      CPHONE_LOG_LEVEL: 'silent',
      ...extra,
    }),
    async startAgent({ env = {}, deps = {} } = {}) {
      const agentConfig = loadAgentConfig(harness.agentEnv(env));
      // A short reconnect backoff keeps restarts within the test's bounded waits.
      const agent = await startAgent(agentConfig, {
        logger: silent,
        session: { backoff: { baseMs: 100, capMs: 1000 } },
        usageResendAfterMs: 1000,
        ...deps,
      });
      agents.add(agent);
      const close = agent.close.bind(agent);
      return Object.assign(agent, {
        close: () => {
          agents.delete(agent);
          return close();
        },
      });
    },
    async stopPlane() {
      const running = plane;
      plane = undefined;
      await running?.close();
    },
    async startPlane() {
      plane = await startControlPlane(config, { logger: silent, clock });
      devices = client(DeviceService);
      hosts = client(HostService);
    },
    async restartPlane() {
      await harness.stopPlane();
      await harness.startPlane();
    },
    async createPhone(name) {
      const { devices: created } = await devices.batchCreateDevices({
        tenantId,
        requests: [
          {
            displayName: name,
            spec: { imageId, vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
            placement: { nodeSelector: { pool: 'e2e' } },
          },
        ],
      });
      const device = created[0];
      if (device === undefined) throw new Error('BatchCreateDevices returned no device');
      return device;
    },
    async device(deviceId) {
      const { device } = await devices.getDevice({ deviceId });
      if (device === undefined) throw new Error(`GetDevice ${deviceId} returned nothing`);
      return device;
    },
    waitForState(deviceId, state, timeoutMs = 15_000) {
      return waitFor(
        `device ${deviceId} to be ${DeviceState[state]}`,
        async () => {
          const d = await harness.device(deviceId);
          return { state: DeviceState[d.state], reason: d.stateReason, message: d.stateMessage, d };
        },
        (v) => v.d.state === state,
        { timeoutMs },
      ).then((v) => v.d);
    },
    waitForHost(state, connected, timeoutMs = 15_000) {
      return waitFor(
        `host ${hostId} to be ${HostState[state]} (connected: ${connected})`,
        async () => {
          const host = (await hosts.getHost({ hostId })).host;
          return { state: host ? HostState[host.state] : 'missing', connected: host?.connected, host };
        },
        (v) => v.host?.state === state && v.host.connected === connected,
        { timeoutMs },
      ).then((v) => v.host as Host);
    },
    async close() {
      for (const agent of [...agents]) await agent.close().catch(() => undefined);
      await plane?.close();
      await external?.close();
      await rm(dataDir, { recursive: true, force: true });
      await rm(agentDataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** A sim runtime for the harness's agent that keeps its virtual phones, to read back what reached them. */
export async function startPhones(h: Harness): Promise<{
  runtime: Awaited<ReturnType<typeof createSimRuntime>>;
  phone(deviceId: string): VirtualPhone;
}> {
  const phones = new Map<string, VirtualPhone>();
  const runtime = await createSimRuntime({
    dataDir: join(h.agentDataDir, 'sim'),
    scope: `e2e-${h.hostId}`,
    launch: async (options) => {
      const phone = await launchVirtualPhone(options);
      phones.set(options.serial, phone);
      return phone;
    },
  });
  return {
    runtime,
    phone(deviceId) {
      const found = phones.get(deviceId);
      if (!found) throw new Error(`no virtual phone ${deviceId}`);
      return found;
    },
  };
}

/**
 * A loopback port free now. For a fixed stream port, as in production: a restarted agent is found
 * at the URL the sessions name.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Creates a phone through the API and waits for it to run; returns its id. */
export async function runningPhone(h: Harness, name: string): Promise<string> {
  const created = await h.createPhone(name);
  await h.waitForState(created.deviceId, DeviceState.RUNNING);
  return created.deviceId;
}

/** A shell command on the phone through the API (ExecShell); its stdout. Fails on a non-zero exit. */
export async function shell(h: Harness, deviceId: string, command: string): Promise<string> {
  const r = await h.devices.execShell({ deviceId, command });
  if (r.exitCode !== 0)
    throw new Error(`${command}: exit ${r.exitCode}: ${Buffer.from(r.stderr).toString()}`);
  return Buffer.from(r.stdout).toString('utf8');
}
