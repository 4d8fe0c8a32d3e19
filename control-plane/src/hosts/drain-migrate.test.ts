// DrainHost MIGRATE end to end on the real control plane (PostgreSQL with DATABASE_URL, else
// PGlite): the public API over a Connect client, and test agents over gRPC/TLS that converge like a
// real agent (desired power -> STOPPED/RUNNING reports, removes -> DELETED reports).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, createClient } from '@connectrpc/connect';
import {
  DeviceService,
  DeviceState,
  DrainMode,
  DrainState,
  type DrainStatus,
  HostService,
  ImageService,
  TenantKind,
  TenantService,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { bearerTransport } from '../api/bearer-transport.js';
import { FakeHost } from '../gateway/fake-host.js';
import { createAgentClient } from '../gateway/test-agent.js';
import { enrollTestHost } from '../gateway/testing.js';
import { allocationReport } from '../placement/testing.js';
import type { ControlPlane } from '../server.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';

let testPlane: TestControlPlane | undefined;
let plane: ControlPlane;
let agentClient: ReturnType<typeof createAgentClient>;
let hosts: Client<typeof HostService>;
let devices: Client<typeof DeviceService>;
let tenantId: string;
const fakes: FakeHost[] = [];

before(async () => {
  testPlane = await startTestControlPlane({
    grpcHost: '127.0.0.1',
    heartbeatIntervalMs: 1000,
    heartbeatTtlMs: 20_000,
  });
  plane = testPlane.plane;
  agentClient = createAgentClient(plane.grpcPort, plane.deps.gateway.caPem ?? '');
  const token = plane.bootstrapToken ?? '';
  const client = <S extends DescService>(service: S) =>
    createClient(service, bearerTransport(plane.httpUrl, token));
  hosts = client(HostService);
  devices = client(DeviceService);
  const tenant = await client(TenantService).createTenant({ kind: TenantKind.RESELLER, displayName: 'acme' });
  tenantId = tenant.tenant?.tenantId ?? '';
  await client(ImageService).createImage({
    imageId: 'android-14',
    image: { displayName: 'Android 14', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
});

after(async () => {
  for (const f of fakes) f.agent.cancel();
  agentClient?.close();
  await testPlane?.close();
});

const db = () => plane.deps.db;

async function fakeHost(id: string, pool: string, slots: number): Promise<FakeHost> {
  const enrolled = await enrollTestHost(db(), { hostId: id, labels: { pool } });
  const fake = new FakeHost(agentClient, id, enrolled.credential, slots);
  fakes.push(fake);
  await waitFor(
    `${id} connected`,
    async () => (await hosts.getHost({ hostId: id })).host,
    (host) => host?.connected === true,
  );
  return fake;
}

async function createPhones(pool: string, count: number): Promise<string[]> {
  const { devices: created } = await devices.batchCreateDevices({
    tenantId,
    requests: Array.from({ length: count }, () => ({
      spec: { imageId: 'android-14', vcpuMillicores: 1000, memoryMib: 2048, storageGib: 16 },
      placement: { nodeSelector: { pool } },
    })),
  });
  return created.map((d) => d.deviceId);
}

const deviceRow = (id: string) =>
  db().selectFrom('device').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

async function waitRunning(ids: readonly string[]) {
  for (const id of ids)
    await waitFor(
      `${id} running`,
      () => deviceRow(id),
      (d) => d.state === 'running',
    );
}

/** Reads the drain's progress (the leader's drainer advances it) until `done` holds; returns every status seen. */
async function followDrain(hostId: string, done: (s: DrainStatus) => boolean, timeoutMs = 10_000) {
  const seen: DrainStatus[] = [];
  await waitFor(
    `drain of ${hostId}`,
    async () => {
      const { drainStatus } = await hosts.getDrainStatus({ hostId });
      if (drainStatus) seen.push(drainStatus);
      return drainStatus;
    },
    (status) => status !== undefined && done(status),
    { timeoutMs },
  );
  return seen;
}

async function assertAllocations(prefix: string) {
  const report = (await allocationReport(db())).filter((h) => h.id.startsWith(prefix));
  for (const h of report) {
    assert.deepEqual(h.allocated, h.devices, `${h.id}: allocated_* equals the sum over its devices`);
    for (const k of ['cpu', 'memory', 'storage', 'devices'] as const) {
      assert.ok(h.allocated[k] <= h.capacity[k], `${h.id} ${k}: ${h.allocated[k]} <= ${h.capacity[k]}`);
    }
  }
  return new Map(report.map((h) => [h.id, h]));
}

test('MIGRATE moves three running phones to the two other hosts and completes', async () => {
  const a = await fakeHost('mig1-a', 'one', 8);
  const phones = await createPhones('one', 3);
  await waitRunning(phones);
  const b = await fakeHost('mig1-b', 'one', 2);
  const c = await fakeHost('mig1-c', 'one', 2);
  const revisionBefore = (await allocationReport(db())).find((h) => h.id === a.hostId)?.desiredRevision ?? 0;

  const started = await hosts.drainHost({ hostId: a.hostId, mode: DrainMode.MIGRATE, reason: 'disk swap' });
  assert.equal(started.drainStatus?.mode, DrainMode.MIGRATE);
  assert.equal(started.drainStatus?.devicesTotal, 3);
  assert.equal(started.drainStatus?.devicesRemaining, 3, 'every phone waits to be moved at the start');
  // No progress read until they are all back up elsewhere: the leader's drainer moves each phone
  // once the old host reports it stopped.
  for (const id of phones) {
    await waitFor(
      `${id} running elsewhere`,
      () => deviceRow(id),
      (d) => d.host_id !== a.hostId && d.state === 'running',
    );
  }
  const done = (await hosts.getDrainStatus({ hostId: a.hostId })).drainStatus;
  assert.equal(done?.state, DrainState.COMPLETED);
  assert.equal(done?.devicesRemaining, 0);
  assert.equal(done?.devicesMigrated, 3);
  assert.equal(done?.devicesFailed, 0);
  const placed = await Promise.all(phones.map(deviceRow));
  for (const d of placed) {
    assert.ok(d.host_id === b.hostId || d.host_id === c.hostId, `${d.id} is on ${d.host_id}`);
    assert.equal(d.desired_power, 'running', 'the power it had before the drain');
  }
  // Each stream hears of a move on its own schedule: wait for the old host to have dropped them all.
  await waitFor(
    'the old host emptied',
    () => a.actual.size,
    (n) => n === 0,
  );
  assert.deepEqual([...a.removed].sort(), [...phones].sort(), 'the old host was told to remove each phone');
  assert.equal(a.actual.size, 0);
  assert.equal(b.actual.size + c.actual.size, 3);

  const events = await db()
    .selectFrom('device_event')
    .selectAll()
    .where('device_id', 'in', phones)
    .where('reason', '=', 'MIGRATED')
    .execute();
  assert.equal(events.length, 3);
  for (const e of events) {
    assert.equal(e.from_state, 'stopped');
    assert.equal(e.to_state, 'scheduled');
    const row = placed.find((d) => d.id === e.device_id);
    assert.equal(e.host_id, row?.host_id, 'the event names the host the device is on after it');
    assert.match(e.message, new RegExp(`host ${a.hostId}.*to host .*${row?.host_id}`));
  }
  const alloc = await assertAllocations('mig1-');
  assert.equal(alloc.get(a.hostId)?.allocated.devices, 0, 'the drained host holds nothing');
  assert.ok((alloc.get(a.hostId)?.desiredRevision ?? 0) > revisionBefore, "the old host's revision moved on");

  // A late report from the old host about a moved phone changes nothing (it is not its host).
  const moved = phones[0] ?? '';
  a.report(moved, DeviceState.STOPPED);
  a.report(moved, DeviceState.DELETED);
  // Acknowledged after both reports were handled (and their transactions committed).
  await a.agent.roundTrip();
  assert.equal((await deviceRow(moved)).state, 'running');
  await assertAllocations('mig1-');
});

test('a phone that fits nowhere stays on the host, stopped, reported until the deadline fails the drain', async () => {
  const d = await fakeHost('mig2-d', 'two', 4);
  const phones = await createPhones('two', 2);
  await waitRunning(phones);
  const e = await fakeHost('mig2-e', 'two', 1);
  await hosts.drainHost({ hostId: d.hostId, mode: DrainMode.MIGRATE, timeout: { seconds: 3n } });
  const seen = await followDrain(d.hostId, (s) => s.devicesMigrated === 1 && s.devicesFailed === 1);
  const status = seen.at(-1);
  assert.equal(status?.state, DrainState.IN_PROGRESS, 'it keeps trying until the deadline');
  assert.equal(status?.devicesRemaining, 1);
  const failure = status?.failures[0];
  assert.ok(failure && phones.includes(failure.deviceId));
  assert.match(failure.reason, /cannot be placed/);
  const stuck = await deviceRow(failure.deviceId);
  assert.equal(stuck.host_id, d.hostId);
  assert.equal(stuck.state, 'stopped', 'held stopped by the drain');
  assert.equal(stuck.desired_power, 'running', 'its own power is unchanged while the drain tries');
  // The move is committed before e hears of it: wait for its agent to bring the phone up.
  await waitFor(
    'the moved phone up on e',
    () => e.actual.size,
    (n) => n === 1,
  );

  const failed = await followDrain(d.hostId, (s) => s.state === DrainState.FAILED);
  assert.equal(failed.at(-1)?.devicesRemaining, 1);
  assert.equal(failed.at(-1)?.failures[0]?.deviceId, failure.deviceId);
  assert.equal((await deviceRow(failure.deviceId)).host_id, d.hostId, 'nothing moves after the deadline');
  assert.equal(
    (await deviceRow(failure.deviceId)).desired_power,
    'stopped',
    'the deadline stops what remains',
  );
  await assertAllocations('mig2-');
});

test('UncordonHost cancels a MIGRATE drain and the phones left run again where they are', async () => {
  const h = await fakeHost('mig3-h', 'three', 4);
  const phones = await createPhones('three', 1);
  await waitRunning(phones);
  // No other host of the pool: the phone stops and waits.
  await hosts.drainHost({ hostId: h.hostId, mode: DrainMode.MIGRATE });
  await followDrain(h.hostId, (s) => s.devicesFailed === 1);
  const id = phones[0] ?? '';
  assert.equal((await deviceRow(id)).state, 'stopped');
  const { host } = await hosts.uncordonHost({ hostId: h.hostId });
  assert.equal(host?.drain?.state, DrainState.CANCELLED);
  assert.equal((await deviceRow(id)).desired_power, 'running');
  await waitRunning([id]);
  assert.equal((await deviceRow(id)).host_id, h.hostId);
});

test('creates racing a MIGRATE drain never overcommit the hosts they share', async () => {
  const f = await fakeHost('mig4-f', 'four', 8);
  const phones = await createPhones('four', 4);
  await waitRunning(phones);
  await fakeHost('mig4-g', 'four', 4);
  await fakeHost('mig4-h', 'four', 4);
  await hosts.drainHost({ hostId: f.hostId, mode: DrainMode.MIGRATE, timeout: { seconds: 4n } });
  // The drain moves phones as f reports them stopped while ten creates, spread over the moves,
  // compete with them for the 8 slots.
  const creates = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) =>
      new Promise((r) => setTimeout(r, i * 15)).then(() => createPhones('four', 1)),
    ),
  );
  const created = creates.filter((r) => r.status === 'fulfilled').length;
  for (const r of creates) {
    if (r.status === 'rejected')
      assert.match(String(r.reason), /ResourceExhausted|resource_exhausted|cannot be placed/i);
  }
  const end = await followDrain(f.hostId, (s) => s.state !== DrainState.IN_PROGRESS, 15_000);
  const status = end.at(-1);
  const alloc = await assertAllocations('mig4-');
  const onTargets = (alloc.get('mig4-g')?.devices.devices ?? 0) + (alloc.get('mig4-h')?.devices.devices ?? 0);
  assert.equal(onTargets, created + (status?.devicesMigrated ?? 0), 'every slot taken is a create or a move');
  assert.ok(onTargets <= 8);
  assert.equal(
    alloc.get(f.hostId)?.devices.devices,
    status?.devicesRemaining,
    'what was not moved is still on (and allocated to) the drained host',
  );
});
