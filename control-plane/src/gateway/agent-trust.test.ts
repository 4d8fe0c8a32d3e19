// What the gateway must not take from an agent on trust, and what it must not leave hanging, probed
// as a hostile or careless agent would: usage for other hosts' devices, Hellos that make the
// credential lookup fail, deletions of devices the stream never told the agent of, and a host that
// looks connected after its stream is gone. A real control plane, agents over gRPC/TLS.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { createClient } from '@connectrpc/connect';
import { DeviceService, DeviceState, HostService, HostState, ImageService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import * as grpc from '@grpc/grpc-js';
import { bearerTransport } from '../api/bearer-transport.js';
import { insertHosts } from '../placement/testing.js';
import type { ControlPlane } from '../server.js';
import { checkLiveness, startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { createAgentClient, TestAgent } from './test-agent.js';
import { enrollTestHost, insertTestDevice } from './testing.js';

let testPlane: TestControlPlane;
let plane: ControlPlane;
let client: ReturnType<typeof createAgentClient>;
const agents: TestAgent[] = [];

before(async () => {
  // A TTL far beyond any wait below: what these tests see never comes from the heartbeat TTL.
  testPlane = await startTestControlPlane({
    grpcHost: '127.0.0.1',
    heartbeatIntervalMs: 1000,
    heartbeatTtlMs: 60_000,
  });
  plane = testPlane.plane;
  client = createAgentClient(plane.grpcPort, plane.deps.gateway.caPem ?? '');
});

after(async () => {
  for (const agent of agents) agent.cancel();
  client.close();
  await testPlane.close();
});

const db = () => plane.deps.db;
const api = <S extends Parameters<typeof createClient>[0]>(service: S) =>
  createClient(service, bearerTransport(plane.httpUrl, plane.bootstrapToken ?? ''));

function connect(hello: Parameters<typeof TestAgent.connect>[1]): TestAgent {
  const agent = TestAgent.connect(client, hello);
  agents.push(agent);
  return agent;
}

/** The stream's status, or a failure if it is still open after `ms`. */
function endsWithin(agent: TestAgent, ms: number): Promise<grpc.StatusObject> {
  return Promise.race([
    agent.ended,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`the stream is still open after ${ms} ms`)), ms).unref(),
    ),
  ]);
}

test('a Hello whose host id or credential the lookup cannot take is closed with a code, not left open', async () => {
  const enrolled = await enrollTestHost(db());
  const cases = [
    { hostId: `${enrolled.hostId}\u0000`, credential: enrolled.credential },
    { hostId: enrolled.hostId, credential: `${enrolled.credential}\u0000` },
    { hostId: enrolled.hostId, credential: 'x'.repeat(10_000) },
  ];
  for (const hello of cases) {
    const status = await endsWithin(connect(hello), 3000);
    assert.equal(grpc.status[status.code], 'UNAUTHENTICATED', JSON.stringify(hello).slice(0, 80));
  }
  // A stream that sends a Hello and then junk is still bound by the Hello's outcome.
  const junk = connect({ hostId: enrolled.hostId, credential: 'nope.nope' });
  junk.heartbeat();
  assert.equal(grpc.status[(await endsWithin(junk, 3000)).code], 'UNAUTHENTICATED');
});

test('usage is counted only for devices on the reporting host, under the control plane’s own tenant', async () => {
  const mine = await enrollTestHost(db());
  const theirs = await enrollTestHost(db());
  const start = new Date(Date.now() - 60_000);
  const own = await insertTestDevice(db(), {
    hostId: mine.hostId,
    state: 'running',
    tenantId: 'tenant_own',
    placedAt: new Date(start.getTime() - 1000),
  });
  const foreign = await insertTestDevice(db(), {
    hostId: theirs.hostId,
    state: 'running',
    tenantId: 'tenant_other',
  });
  const agent = connect(mine);
  await agent.next('welcome');
  const sample = (sequence: bigint, deviceId: string, tenantId: string, at = start) => ({
    sequence,
    deviceId,
    tenantId,
    startTime: timestampFromDate(at),
    endTime: timestampFromDate(new Date(at.getTime() + 60_000)),
    vcpuMillicores: 1000,
    memoryMib: 1024,
    storageGib: 8,
    state: DeviceState.RUNNING,
  });
  agent.send({
    case: 'usageReport',
    value: {
      samples: [
        sample(1n, own.deviceId, 'tenant_victim'),
        sample(2n, foreign.deviceId, foreign.tenantId),
        sample(3n, 'dev_made_up', 'tenant_victim'),
        // Its own device, but for an hour before it was placed here.
        sample(4n, own.deviceId, 'tenant_own', new Date(start.getTime() - 3_600_000)),
        // Times no host measured: a day ahead, past what a database stores, ending before it starts.
        sample(5n, own.deviceId, 'tenant_own', new Date(Date.now() + 86_400_000)),
        { ...sample(6n, own.deviceId, 'tenant_own'), startTime: { seconds: 1n << 40n, nanos: 0 } },
        {
          ...sample(7n, own.deviceId, 'tenant_own'),
          endTime: timestampFromDate(new Date(start.getTime() - 1)),
        },
      ],
    },
  });
  const ack = await agent.next('usageAck');
  assert.equal(ack.sequence, 7n, 'every sample is acknowledged, so the spool drains');
  const stored = await db()
    .selectFrom('usage_sample')
    .selectAll()
    .where('host_id', '=', mine.hostId)
    .execute();
  assert.deepEqual(
    stored.map((s) => [s.sequence, s.device_id, s.tenant_id]),
    [[1, own.deviceId, 'tenant_own']],
    'only its own device, under the tenant the control plane knows',
  );
  const rejected = await db()
    .selectFrom('usage_rejected')
    .select(['sequence', 'reason'])
    .where('host_id', '=', mine.hostId)
    .orderBy('sequence')
    .execute();
  assert.deepEqual(
    rejected.map((r) => [r.sequence, r.reason]),
    [
      [2, 'DEVICE_NOT_ON_HOST'],
      [3, 'UNKNOWN_DEVICE'],
      [4, 'DEVICE_NOT_ON_HOST'],
      [5, 'BAD_INTERVAL'],
      [6, 'BAD_INTERVAL'],
      [7, 'BAD_INTERVAL'],
    ],
  );
  const victim = await db()
    .selectFrom('usage_sample')
    .select('sequence')
    .where('tenant_id', 'in', ['tenant_victim', 'tenant_other'])
    .execute();
  assert.deepEqual(victim, [], 'nothing was billed to another tenant');
});

test('a device deleted before this stream told its agent of it is deleted at once and gives its resources back', async () => {
  const enrolled = await enrollTestHost(db());
  const agent = connect(enrolled);
  await agent.next('welcome');
  await agent.next('desiredDevices');
  // Created and deleted within one desired-state sync: the agent is never told of it.
  const { deviceId } = await insertTestDevice(db(), {
    hostId: enrolled.hostId,
    state: 'deleting',
    allocate: true,
  });
  plane.deps.gateway.desiredChanged(enrolled.hostId);
  const done = await waitFor(
    'the deletion to complete',
    () =>
      db()
        .selectFrom('device')
        .select(['state', 'state_reason'])
        .where('id', '=', deviceId)
        .executeTakeFirstOrThrow(),
    (row) => row.state === 'deleted',
  );
  assert.equal(done.state_reason, 'NEVER_CREATED');
  const host = await db()
    .selectFrom('host')
    .select(['allocated_devices', 'allocated_vcpu_millicores'])
    .where('id', '=', enrolled.hostId)
    .executeTakeFirstOrThrow();
  assert.deepEqual(host, { allocated_devices: 0, allocated_vcpu_millicores: 0 });

  // One the agent was told of waits for the agent: it may have made something of it. (Each change
  // bumps the host's revision, as the control plane's own writers do, so it rides a delta.)
  const bump = () =>
    db()
      .updateTable('host')
      .set((eb) => ({ desired_revision: eb('desired_revision', '+', 1) }))
      .where('id', '=', enrolled.hostId)
      .execute();
  const told = await insertTestDevice(db(), { hostId: enrolled.hostId, state: 'scheduled', allocate: true });
  await bump();
  plane.deps.gateway.desiredChanged(enrolled.hostId);
  await agent.next('deviceUpsert', 5000, (u) => u.device?.deviceId === told.deviceId);
  await db().updateTable('device').set({ state: 'deleting' }).where('id', '=', told.deviceId).execute();
  await bump();
  plane.deps.gateway.desiredChanged(enrolled.hostId);
  await agent.next('deviceRemove', 5000, (r) => r.deviceId === told.deviceId);
  const waiting = await db()
    .selectFrom('device')
    .select('state')
    .where('id', '=', told.deviceId)
    .executeTakeFirstOrThrow();
  assert.equal(waiting.state, 'deleting');
  agent.send({
    case: 'deviceStatus',
    value: { device: { deviceId: told.deviceId, state: DeviceState.DELETED } },
  });
  await waitFor(
    'the told device deleted',
    () => db().selectFrom('device').select('state').where('id', '=', told.deviceId).executeTakeFirstOrThrow(),
    (row) => row.state === 'deleted',
  );
});

test('connected means a stream is open now: a killed agent’s host is unreachable at once and creates go elsewhere', async () => {
  const hosts = api(HostService);
  const devices = api(DeviceService);
  await api(ImageService).createImage({
    imageId: 'img-trust',
    image: { displayName: 'Android', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
  const dying = await enrollTestHost(db(), { labels: { pool: 'trust' } });
  const living = await enrollTestHost(db(), { labels: { pool: 'trust' } });
  const a = connect(dying);
  const b = connect(living);
  await a.next('welcome');
  await b.next('welcome');
  // Bin-packing prefers the fuller host: make it the one about to die.
  await insertTestDevice(db(), { hostId: dying.hostId, state: 'running', allocate: true });
  const ready = (await hosts.getHost({ hostId: dying.hostId })).host;
  assert.equal(ready?.connected, true);
  assert.equal(ready?.state, HostState.READY);
  assert.equal(ready?.protocolVersion, 1, 'the protocol its agent speaks');

  a.cancel();
  const gone = await waitFor(
    'the stream to be gone',
    async () => (await hosts.getHost({ hostId: dying.hostId })).host,
    (host) => host?.connected === false,
  );
  assert.equal(gone?.state, HostState.UNREACHABLE, 'not READY without a stream, long before the TTL');
  const { devices: created } = await devices.batchCreateDevices({
    requests: [
      {
        spec: { imageId: 'img-trust', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 8 },
        placement: { nodeSelector: { pool: 'trust' } },
      },
    ],
  });
  assert.equal(created[0]?.hostId, living.hostId, 'placed on the host whose stream is open');

  // A replica that died without releasing its streams: the leader clears them.
  await db()
    .updateTable('host')
    .set({ gateway_replica: 'replica-that-crashed' })
    .where('id', '=', dying.hostId)
    .execute();
  assert.equal((await hosts.getHost({ hostId: dying.hostId })).host?.connected, true);
  await checkLiveness(plane);
  assert.equal((await hosts.getHost({ hostId: dying.hostId })).host?.connected, false);
});

test('with no host connected, placement falls back to a host briefly without a stream', async () => {
  await insertHosts(db(), [{ id: 'fallback-only', labels: { pool: 'fallback' }, connected: false }]);
  await api(ImageService)
    .createImage({
      imageId: 'img-fallback',
      image: { displayName: 'Android', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
    })
    .catch(() => undefined);
  const { devices: created } = await api(DeviceService).batchCreateDevices({
    requests: [
      {
        spec: { imageId: 'img-fallback', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 8 },
        placement: { nodeSelector: { pool: 'fallback' } },
      },
    ],
  });
  assert.equal(created[0]?.hostId, 'fallback-only');
});
