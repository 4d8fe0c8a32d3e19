// The drainer runs on the leader only, and reads never start work: two control-plane replicas on one
// database (PostgreSQL with DATABASE_URL, else one PGlite shared in process) with hosts whose agents
// converge at once, and drainers that run only when the test asks.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { DescService } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import {
  DeviceService,
  DrainMode,
  DrainState,
  HostService,
  ImageService,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { bearerTransport } from '../api/bearer-transport.js';
import { loadConfig } from '../config.js';
import { FakeHost } from '../gateway/fake-host.js';
import { createAgentClient } from '../gateway/test-agent.js';
import { enrollTestHost } from '../gateway/testing.js';
import { allocationReport } from '../placement/testing.js';
import { type ControlPlane, startControlPlane } from '../server.js';
import { sharedTestDatabase } from '../test-control-plane.js';
import type { Drainer } from './drainer.js';

let dataDir: string;
let closeDatabase: () => Promise<void>;
const planes: ControlPlane[] = [];
const fakes: FakeHost[] = [];
let agentClient: ReturnType<typeof createAgentClient>;
let token = '';
let tenantId = '';

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cphone-drainer-'));
  const { databaseUrl, database, close } = await sharedTestDatabase();
  closeDatabase = close;
  const start = () =>
    startControlPlane(
      loadConfig(
        {},
        { dataDir, databaseUrl, httpPort: 0, grpcPort: 0, grpcHost: '127.0.0.1', heartbeatTtlMs: 60_000 },
      ),
      {
        logger: pino({ level: 'silent' }),
        leaderPollMs: 100,
        // Drains advance only when a test nudges a drainer (a nudge on a follower does nothing).
        drainIntervalMs: 3_600_000,
        ...(database ? { database } : {}),
      },
    );
  planes.push(await start());
  planes.push(await start());
  const first = planes[0] as ControlPlane;
  token = first.bootstrapToken ?? '';
  agentClient = createAgentClient(first.grpcPort, first.deps.gateway.caPem ?? '');
  const api = apiOf(first);
  tenantId =
    (await api(TenantService).createTenant({ kind: TenantKind.RESELLER, displayName: 'drains' })).tenant
      ?.tenantId ?? '';
  await api(ImageService).createImage({
    imageId: 'img-drain',
    image: { displayName: 'Android', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
});

after(async () => {
  for (const f of fakes) f.agent.cancel();
  agentClient?.close();
  for (const plane of planes) await plane.close();
  await closeDatabase?.();
  await rm(dataDir, { recursive: true, force: true });
});

const apiOf =
  (plane: ControlPlane) =>
  <S extends DescService>(service: S) =>
    createClient(service, bearerTransport(plane.httpUrl, token));
const db = () => (planes[0] as ControlPlane).deps.db;
const drainerOf = (plane: ControlPlane) => plane.deps.drainer as Drainer;

async function roles(): Promise<{ leader: ControlPlane; follower: ControlPlane }> {
  const { leader, follower } = await waitFor(
    'one replica to lead',
    () => {
      const leader = planes.find((p) => p.cluster.isLeader());
      return { leader, follower: planes.find((p) => p !== leader) };
    },
    (r) => r.leader !== undefined && r.follower !== undefined,
  );
  return { leader: leader as ControlPlane, follower: follower as ControlPlane };
}

async function fakeHost(pool: string, slots: number): Promise<FakeHost> {
  const enrolled = await enrollTestHost(db(), { labels: { pool } });
  const fake = new FakeHost(agentClient, enrolled.hostId, enrolled.credential, slots);
  fakes.push(fake);
  await fake.agent.next('welcome');
  return fake;
}

async function phones(plane: ControlPlane, pool: string, count: number): Promise<string[]> {
  const { devices } = await apiOf(plane)(DeviceService).batchCreateDevices({
    tenantId,
    requests: Array.from({ length: count }, () => ({
      spec: { imageId: 'img-drain', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 8 },
      placement: { nodeSelector: { pool } },
    })),
  });
  const ids = devices.map((d) => d.deviceId);
  for (const id of ids) {
    await waitFor(
      `${id} running`,
      () => deviceRow(id),
      (d) => d.state === 'running',
    );
  }
  return ids;
}

const deviceRow = (id: string) =>
  db().selectFrom('device').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const migratedEvents = (ids: readonly string[]) =>
  db()
    .selectFrom('device_event')
    .select('device_id')
    .where('device_id', 'in', ids)
    .where('reason', '=', 'MIGRATED')
    .execute();

test('reads on either replica start nothing; the leader’s drainer does the moves', async () => {
  const { leader, follower } = await roles();
  const source = await fakeHost('reads', 4);
  const ids = await phones(follower, 'reads', 2);
  await fakeHost('reads', 4);
  const hosts = apiOf(follower)(HostService);
  await hosts.drainHost({ hostId: source.hostId, mode: DrainMode.MIGRATE });
  // The drain holds the phones stopped: the agent stops them, so they are ready to move.
  for (const id of ids)
    await waitFor(
      `${id} stopped`,
      () => deviceRow(id),
      (d) => d.state === 'stopped',
    );
  for (let i = 0; i < 5; i++) {
    for (const plane of [leader, follower]) {
      await apiOf(plane)(HostService).getHost({ hostId: source.hostId });
      await apiOf(plane)(HostService).listHosts({});
      await apiOf(plane)(HostService).getDrainStatus({ hostId: source.hostId });
    }
  }
  assert.equal(
    await drainerOf(follower)
      .nudge()
      .then((r) => r.moved.length),
    0,
    'a follower drains nothing',
  );
  for (const id of ids) assert.equal((await deviceRow(id)).host_id, source.hostId, 'no read moved a phone');
  const before = await hosts.getDrainStatus({ hostId: source.hostId });
  assert.equal(before.drainStatus?.state, DrainState.IN_PROGRESS);
  assert.equal(before.drainStatus?.devicesMigrated, 0);

  const pass = await drainerOf(leader).nudge();
  assert.equal(pass.moved.length, 2);
  assert.deepEqual(pass.ended, [{ hostId: source.hostId, state: 'completed' }]);
  const after = await hosts.getDrainStatus({ hostId: source.hostId });
  assert.equal(after.drainStatus?.state, DrainState.COMPLETED);
  assert.equal(after.drainStatus?.devicesMigrated, 2);
});

test('a leader handover mid-drain finishes the drain once, each phone moved once, even with passes overlapping', async () => {
  const source = await fakeHost('handover', 8);
  const ids = await phones(planes[0] as ControlPlane, 'handover', 4);
  await fakeHost('handover', 8);
  // Two phones stop at once; the other two are slow to stop.
  const slow = ids.slice(2);
  for (const id of slow) source.stuck.add(id);
  const { leader: first } = await roles();
  // Ops listen for drained hosts (a subscription row of the platform; its target is refused before
  // any connection: delivery is the webhooks' own test).
  await db()
    .insertInto('webhook')
    .values({
      id: `wh_drains_${source.hostId}`,
      tenant_id: 'platform',
      display_name: 'drains',
      url: 'https://127.0.0.1:9/drains',
      event_types: JSON.stringify(['host_drained']),
      secret: 'sealed',
      create_time: new Date(),
      update_time: new Date(),
    })
    .execute();
  await apiOf(first)(HostService).drainHost({ hostId: source.hostId, mode: DrainMode.MIGRATE });
  for (const id of ids.slice(0, 2))
    await waitFor(
      `${id} stopped`,
      () => deviceRow(id),
      (d) => d.state === 'stopped',
    );
  const early = await drainerOf(first).nudge();
  assert.equal(early.moved.length, 2);
  assert.deepEqual(early.ended, []);

  // The leader goes: the other replica takes over.
  await first.cluster.close();
  const next = await waitFor(
    'the other replica to lead',
    () => planes.find((p) => p !== first && p.cluster.isLeader()),
    (p): p is ControlPlane => p !== undefined,
  );
  for (const id of slow) source.release(id);
  for (const id of slow)
    await waitFor(
      `${id} stopped`,
      () => deviceRow(id),
      (d) => d.state === 'stopped',
    );
  // The old leader's last pass overlaps the new leader's: nothing moves twice, the drain ends once.
  const [late, stale] = await Promise.all([drainerOf(next).pass(), drainerOf(first).pass()]);
  assert.equal(late.moved.length + stale.moved.length, 2);
  assert.equal(late.ended.length + stale.ended.length, 1, 'the drain ended exactly once');
  const events = await migratedEvents(ids);
  assert.deepEqual(events.map((e) => e.device_id).sort(), [...ids].sort(), 'one MIGRATED event per phone');
  const drained = await db()
    .selectFrom('webhook_event')
    .select(['tenant_id', 'body'])
    .where('type', '=', 'host_drained')
    .execute();
  assert.deepEqual(
    drained.filter((e) => JSON.parse(e.body).host?.hostId === source.hostId).map((e) => e.tenant_id),
    ['platform'],
    'one HOST_DRAINED event, for the platform',
  );
  const status = await apiOf(next)(HostService).getDrainStatus({ hostId: source.hostId });
  assert.equal(status.drainStatus?.state, DrainState.COMPLETED);
  assert.equal(status.drainStatus?.devicesMigrated, 4);
  for (const h of await allocationReport(db())) {
    assert.deepEqual(h.allocated, h.devices, `${h.id}: the ledger equals the sum of its phones`);
  }
});
