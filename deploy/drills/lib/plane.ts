// The real control plane for a drill, in this process, on a PostgreSQL URL the drill gives; a tenant,
// an image and enrolled hosts through the public API (Connect, bearer token); real host agents
// (sim runtime: virtual phones in the agent's process) that meter usage every `usageIntervalMs`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient } from '@connectrpc/connect';
import { type ControlPlane, loadConfig, startControlPlane } from '@cphone/control-plane';
import { bearerTransport } from '@cphone/control-plane/testing';
import { type Agent, loadConfig as loadAgentConfig, startAgent } from '@cphone/host-agent';
import {
  DeviceService,
  HostService,
  HostState,
  ImageService,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import pino from 'pino';

export const IMAGE_ID = 'android-14-drill';
export const POOL = 'drill';

/** Log lines of the control plane the drills count (leadership changes, pool errors). */
export class LogTap {
  readonly lines: { time: number; msg: string; level: number }[] = [];
  readonly logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        try {
          const { time, msg, level } = JSON.parse(line) as { time: number; msg: string; level: number };
          this.lines.push({ time, msg, level });
        } catch {
          // not a JSON line
        }
      },
    },
  );

  count(msg: string, since = 0): number {
    return this.lines.filter((l) => l.msg === msg && l.time >= since).length;
  }
}

export const LEADS = 'this replica leads the periodic jobs';

export interface Fleet {
  plane: ControlPlane;
  tap: LogTap;
  token: string;
  tenantId: string;
  hosts: { hostId: string; credential: string }[];
  client<S extends DescService>(service: S): Client<S>;
  /** The agent environment for host `i` (sim runtime, its own data dir), plus `extra`. */
  agentEnv(i: number, extra?: Record<string, string>): Record<string, string>;
  startAgent(i: number): Promise<Agent>;
  agents: Agent[];
  /** Resolves once every enrolled host is connected and ready. */
  waitForHosts(timeoutMs?: number): Promise<void>;
  /** Stops the agents and the control plane, removes the temporary folders. */
  close(): Promise<void>;
}

export interface FleetOptions {
  databaseUrl: string;
  hosts: number;
  usageIntervalMs?: number;
  dbPoolSize?: number;
}

/** Starts the control plane on `databaseUrl` (migrating it) and enrolls `hosts` hosts. */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-drill-cp-'));
  const agentRoot = await mkdtemp(join(tmpdir(), 'cphone-drill-agents-'));
  const tap = new LogTap();
  const plane = await startControlPlane(
    loadConfig(
      {},
      {
        dataDir,
        databaseUrl: options.databaseUrl,
        dbPoolSize: options.dbPoolSize ?? 10,
        httpPort: 0,
        grpcPort: 0,
        grpcHost: '127.0.0.1',
        heartbeatIntervalMs: 500,
        heartbeatTtlMs: 120_000,
        lostGraceMs: 120_000,
      },
    ),
    { logger: tap.logger, leaderPollMs: 200 },
  );
  const token = plane.bootstrapToken;
  if (token === undefined) throw new Error('a fresh database gives the bootstrap token');
  const client = <S extends DescService>(service: S): Client<S> =>
    createClient(service, bearerTransport(plane.httpUrl, token));
  const tenant = await client(TenantService).createTenant({
    kind: TenantKind.RESELLER,
    displayName: 'drill',
  });
  const tenantId = tenant.tenant?.tenantId ?? '';
  await client(ImageService).createImage({
    imageId: IMAGE_ID,
    image: {
      displayName: 'Android 14',
      containerImage: 'redroid/redroid:14.0.0_64only-latest',
      archs: ['arm64'],
      defaultSpec: { vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
      minMemoryMib: 512,
    },
  });
  const hosts: Fleet['hosts'] = [];
  for (let i = 0; i < options.hosts; i++) {
    const enrolled = await client(HostService).enrollHost({
      name: `drill-host-${i}`,
      arch: 'arm64',
      labels: { pool: POOL },
    });
    hosts.push({ hostId: enrolled.host?.hostId ?? '', credential: enrolled.credential });
  }
  const agents: Agent[] = [];
  const fleet: Fleet = {
    plane,
    tap,
    token,
    tenantId,
    hosts,
    client,
    agents,
    agentEnv: (i, extra = {}) => {
      const host = hosts[i];
      if (!host) throw new Error(`no host ${i}`);
      return {
        CPHONE_HOST_ID: host.hostId,
        CPHONE_HOST_CREDENTIAL: host.credential,
        CPHONE_CONTROL_PLANE: `localhost:${plane.grpcPort}`,
        CPHONE_CA_FILE: join(dataDir, 'tls', 'ca.pem'),
        CPHONE_RUNTIME: 'sim',
        CPHONE_RUNTIME_SCOPE: `drill-${host.hostId}`,
        CPHONE_AGENT_DATA_DIR: join(agentRoot, host.hostId),
        CPHONE_AGENT_HTTP_PORT: '0',
        CPHONE_STREAM: 'off',
        CPHONE_ARCH: 'arm64',
        CPHONE_CAPACITY_VCPU_MILLICORES: '400000',
        CPHONE_CAPACITY_MEMORY_MIB: '800000',
        CPHONE_CAPACITY_STORAGE_GIB: '4000',
        CPHONE_MAX_DEVICES: '400',
        CPHONE_USAGE_INTERVAL_MS: String(options.usageIntervalMs ?? 250),
        CPHONE_BOOT_TIMEOUT_MS: '20000',
        CPHONE_STOP_TIMEOUT_MS: '2000',
        CPHONE_LOG_LEVEL: 'silent',
        ...extra,
      };
    },
    async startAgent(i) {
      const agent = await startAgent(loadAgentConfig(fleet.agentEnv(i)), {
        logger: pino({ level: 'silent' }),
        session: { backoff: { baseMs: 100, capMs: 1000 } },
        usageResendAfterMs: 1000,
      });
      agents.push(agent);
      return agent;
    },
    async waitForHosts(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { hosts: listed } = await client(HostService).listHosts({ pageSize: 1000 });
        const ready = listed.filter((h) => h.connected && h.state === HostState.READY).length;
        if (ready === hosts.length) return;
        if (Date.now() > deadline)
          throw new Error(`${ready} of ${hosts.length} hosts ready after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async close() {
      for (const agent of agents.splice(0)) await agent.close().catch(() => undefined);
      await plane.close().catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
      await rm(agentRoot, { recursive: true, force: true });
    },
  };
  return fleet;
}

/** Creates one phone through the public API (BatchCreateDevices); its id. */
export async function createPhone(fleet: Fleet, name: string): Promise<string> {
  const { devices } = await fleet.client(DeviceService).batchCreateDevices({
    tenantId: fleet.tenantId,
    requests: [
      {
        displayName: name,
        spec: { imageId: IMAGE_ID, vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
        placement: { nodeSelector: { pool: POOL } },
      },
    ],
  });
  const id = devices[0]?.deviceId;
  if (!id) throw new Error('BatchCreateDevices returned no device');
  return id;
}

/** The API's figures a drill compares, read through SQL on the database itself. */
export const SNAPSHOT_SQL = `
  select
    (select count(*) from tenant) as tenants,
    (select count(*) from host) as hosts,
    (select count(*) from image) as images,
    (select count(*) from api_key) as api_keys,
    (select count(*) from device) as devices,
    (select count(*) from device_event) as device_events,
    (select count(*) from usage_sample) as usage_samples,
    (select coalesce(sum(extract(epoch from end_time - start_time) * 1000), 0)::bigint from usage_sample) as usage_ms,
    (select coalesce(sum(extract(epoch from end_time - start_time) * vcpu_millicores), 0)::bigint from usage_sample) as usage_vcpu_ms,
    (select coalesce(sum(acked_sequence), 0)::bigint from usage_cursor) as usage_cursor_sum
`;

export type Snapshot = Record<string, number>;

export function toSnapshot(row: Record<string, unknown> | undefined): Snapshot {
  const out: Snapshot = {};
  for (const [k, v] of Object.entries(row ?? {})) out[k] = Number(v);
  return out;
}
