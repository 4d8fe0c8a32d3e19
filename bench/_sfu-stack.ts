// The whole path a viewer takes, for bench/sfu.ts's glass-to-glass and revocation figures: the
// real control plane (PGlite, or DATABASE_URL) and its public API, a real host agent enrolled
// through it and connected over gRPC/TLS, its sim runtime's virtual phones streaming the 2 Mbit/s
// recordings, and the agent's sfu behind its WSS endpoint. All in this process, on loopback.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, createClient } from '@connectrpc/connect';
import { bearerTransport, type ControlPlane, loadConfig, startControlPlane } from '@cphone/control-plane';
import { createTestDatabase } from '@cphone/control-plane/testing';
import {
  type Agent,
  createSimRuntime,
  loadConfig as loadAgentConfig,
  type SimRuntime,
  startAgent,
  startVirtualPhone,
  type VirtualPhone,
} from '@cphone/host-agent';
import {
  DeviceService,
  DeviceState,
  HostService,
  HostState,
  ImageService,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';

export interface Stack {
  readonly plane: ControlPlane;
  readonly agent: Agent;
  readonly devices: Client<typeof DeviceService>;
  /** The agent's data dir (its stream endpoint's generated CA is stream-tls/ca.pem in it). */
  readonly agentDataDir: string;
  /** Creates a phone through the API and waits for it to run. */
  runningPhone(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function startStack({
  videoFixturesDir,
  maxViewers,
  agentEnv = {},
  phones,
}: {
  videoFixturesDir: string;
  maxViewers: number;
  /** Agent settings over the defaults below (e.g. CPHONE_STREAM_TLS=off). */
  agentEnv?: Record<string, string>;
  /** Filled with the virtual phones by serial (the device id), to watch what reaches them. */
  phones?: Map<string, VirtualPhone>;
}): Promise<Stack> {
  const silent = pino({ level: 'silent' });
  const dir = await mkdtemp(join(tmpdir(), 'cphone-bench-sfu-stack-'));
  const database = process.env.DATABASE_URL ? await createTestDatabase({ kind: 'postgres' }) : undefined;
  const plane = await startControlPlane(
    loadConfig(
      {},
      {
        dataDir: join(dir, 'control-plane'),
        databaseUrl: database?.url,
        httpPort: 0,
        grpcHost: '127.0.0.1',
        grpcPort: 0,
        heartbeatIntervalMs: 1000,
        // The benchmark drives the API far above a customer's default rate limits.
        rateLimitKeyRps: 1_000_000,
        rateLimitKeyBurst: 1_000_000,
        rateLimitTenantRps: 1_000_000,
        rateLimitTenantBurst: 1_000_000,
      },
    ),
    { logger: silent },
  );
  const token = plane.bootstrapToken ?? '';
  const client = <S extends Parameters<typeof createClient>[0]>(service: S) =>
    createClient(service, bearerTransport(plane.httpUrl, token));
  const hosts = client(HostService);
  const devices = client(DeviceService);
  const enrolled = await hosts.enrollHost({ name: 'bench-host', arch: 'arm64', labels: { pool: 'bench' } });
  const hostId = enrolled.host?.hostId ?? '';
  const tenant = await client(TenantService).createTenant({
    kind: TenantKind.RESELLER,
    displayName: 'bench',
  });
  const tenantId = tenant.tenant?.tenantId ?? '';
  const imageId = 'android-14-bench';
  await client(ImageService).createImage({
    imageId,
    image: {
      displayName: 'Android 14',
      containerImage: 'redroid/redroid:14.0.0_64only-latest',
      archs: ['arm64'],
    },
  });

  const runtime: SimRuntime = await createSimRuntime({
    dataDir: join(dir, 'sim'),
    scope: `bench-${hostId}`,
    // The sim runtime's own launcher, with the 2 Mbit/s recordings instead of the committed ones.
    launch: async (o) => {
      const phone = await startVirtualPhone({
        host: o.host,
        port: o.port,
        serial: o.serial,
        bootDelayMs: o.bootDelayMs,
        screen: { width: o.screen.width, height: o.screen.height, dpi: o.screen.dpi },
        videoFixturesDir,
        ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
      });
      phones?.set(o.serial, phone);
      return phone;
    },
  });
  const agent = await startAgent(
    loadAgentConfig({
      CPHONE_HOST_ID: hostId,
      CPHONE_HOST_CREDENTIAL: enrolled.credential,
      CPHONE_CONTROL_PLANE: `localhost:${plane.grpcPort}`,
      CPHONE_CA_FILE: join(dir, 'control-plane', 'tls', 'ca.pem'),
      CPHONE_RUNTIME: 'sim',
      CPHONE_AGENT_DATA_DIR: join(dir, 'agent'),
      CPHONE_AGENT_HTTP_PORT: '0',
      CPHONE_STREAM_BIND: '127.0.0.1',
      CPHONE_STREAM_PORT: '0',
      CPHONE_RTC_LISTEN_IP: '127.0.0.1',
      CPHONE_RTC_PORT: '0',
      CPHONE_SFU_WORKERS: '1',
      CPHONE_STREAM_MAX_VIEWERS: String(maxViewers),
      CPHONE_STREAM_ROOM_GRACE_MS: '1000',
      CPHONE_ARCH: 'arm64',
      CPHONE_CAPACITY_VCPU_MILLICORES: '16000',
      CPHONE_CAPACITY_MEMORY_MIB: '32768',
      CPHONE_CAPACITY_STORAGE_GIB: '200',
      CPHONE_LOG_LEVEL: 'silent',
      ...agentEnv,
    }),
    { logger: silent, runtime },
  );
  await waitFor(
    'the host READY and connected',
    async () => (await hosts.getHost({ hostId })).host,
    (h) => h?.state === HostState.READY && h.connected === true,
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  return {
    plane,
    agent,
    devices,
    agentDataDir: join(dir, 'agent'),
    async runningPhone(name) {
      const { devices: created } = await devices.batchCreateDevices({
        tenantId,
        requests: [
          {
            displayName: name,
            spec: { imageId, vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
            placement: { nodeSelector: { pool: 'bench' } },
          },
        ],
      });
      const deviceId = created[0]?.deviceId ?? '';
      await waitFor(
        `phone ${deviceId} RUNNING`,
        async () => (await devices.getDevice({ deviceId })).device?.state,
        (s) => s === DeviceState.RUNNING,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      return deviceId;
    },
    async close() {
      await agent.close();
      await runtime.close();
      await plane.close();
      await database?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
