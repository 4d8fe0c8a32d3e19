// The agent gateway end to end: a real control plane (PostgreSQL with DATABASE_URL, else PGlite)
// and test agents speaking cphone.agent.v1 over TLS on loopback. Time is a ManualClock and liveness
// passes run when a test asks for one, so TTLs and graces are crossed by moving the clock, never by
// waiting them out.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { agentv1 } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import * as grpc from '@grpc/grpc-js';
import { ManualClock } from '../clock.js';
import { UnavailableError } from '../errors.js';
import type { ControlPlane } from '../server.js';
import { checkLiveness, startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { agentVersionRange } from './hello.js';
import { createAgentClient, TestAgent } from './test-agent.js';
import { enrollTestHost, insertTestDevice } from './testing.js';
import { gatewayCaPem } from './tls.js';

const HEARTBEAT_MS = 200;
const TTL_MS = 600;
const GRACE_MS = 600;

const clock = new ManualClock();
let testPlane: TestControlPlane;
let plane: ControlPlane;
let client: ReturnType<typeof createAgentClient>;
const agents: TestAgent[] = [];

before(async () => {
  testPlane = await startTestControlPlane(
    {
      grpcHost: '127.0.0.1',
      heartbeatIntervalMs: HEARTBEAT_MS,
      heartbeatTtlMs: TTL_MS,
      lostGraceMs: GRACE_MS,
    },
    // The monitor's own timer stays out of the way: every pass is one a test runs.
    { clock, gateway: { monitorIntervalMs: 3_600_000 } },
  );
  plane = testPlane.plane;
  client = createAgentClient(plane.grpcPort, plane.deps.gateway.caPem ?? '');
});

after(async () => {
  for (const agent of agents) agent.cancel();
  client.close();
  await testPlane.close();
});

function connect(hello: Parameters<typeof TestAgent.connect>[1]): TestAgent {
  const agent = TestAgent.connect(client, hello);
  agents.push(agent);
  return agent;
}

const db = () => plane.deps.db;
const host = (id: string) =>
  db().selectFrom('host').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const device = (id: string) =>
  db().selectFrom('device').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const events = (id: string) =>
  db()
    .selectFrom('device_event')
    .select(['from_state', 'to_state', 'reason'])
    .where('device_id', '=', id)
    .orderBy('id')
    .execute();

describe('TLS material', () => {
  test('the embedded default writes its CA and server key pair once, keys 0600, and reuses them', async () => {
    const dir = join(testPlane.dataDir, 'tls');
    for (const key of ['ca-key.pem', 'server-key.pem']) {
      assert.equal((await stat(join(dir, key))).mode & 0o777, 0o600, key);
    }
    const ca = await readFile(join(dir, 'ca.pem'), 'utf8');
    assert.equal(plane.deps.gateway.caPem, ca);
    assert.equal(await gatewayCaPem(plane.deps.config), ca, 'a second load reuses the files');
  });
});

describe('registration', () => {
  test('an enrolled host gets Welcome then its full desired set, and is recorded ready', async () => {
    const enrolled = await enrollTestHost(db(), { labels: { zone: 'rack-1' } });
    const placed = await insertTestDevice(db(), { hostId: enrolled.hostId, state: 'scheduled' });
    await insertTestDevice(db(), { hostId: enrolled.hostId, state: 'deleting' });
    const agent = connect({
      hostId: enrolled.hostId,
      credential: enrolled.credential,
      arch: 'arm64',
      hostname: 'rk3588-01',
      runtimeKind: 'sim',
      labels: { agent: 'yes' },
      capacity: { vcpuMillicores: 8000n, memoryBytes: 16n << 30n, storageBytes: 500n << 30n, devices: 6 },
    });
    const welcome = await agent.next('welcome');
    assert.equal(welcome.hostId, enrolled.hostId);
    assert.equal(welcome.minProtocolVersion, 1);
    assert.equal(welcome.maxProtocolVersion, 1);
    assert.equal(welcome.heartbeatInterval?.nanos, 200_000_000);
    assert.equal(welcome.usageAckSequence, 0n);
    const desired = await agent.next('desiredDevices');
    assert.equal(desired.revision, 1n);
    assert.deepEqual(
      desired.devices.map((d) => d.deviceId),
      [placed.deviceId],
      'devices being deleted are not desired',
    );
    assert.equal(desired.devices[0]?.spec?.imageRef, 'redroid/redroid:14.0.0-latest');
    assert.equal(desired.devices[0]?.powerState, agentv1.PowerState.RUNNING);

    const row = await host(enrolled.hostId);
    assert.equal(row.connection, 'ready');
    assert.equal(row.hostname, 'rk3588-01');
    assert.equal(row.capacity_memory_mib, 16 * 1024);
    assert.equal(row.capacity_storage_gib, 500);
    assert.deepEqual(row.labels, { zone: 'rack-1' }, 'enrolled labels stay authoritative');
    assert.deepEqual(row.agent_labels, { agent: 'yes' });
    assert.deepEqual(plane.deps.gateway.connectedHosts().includes(enrolled.hostId), true);

    // The agent reports the device running: it passed through creating, both recorded.
    agent.send({
      case: 'deviceStatus',
      value: {
        device: {
          deviceId: placed.deviceId,
          state: agentv1.DeviceState.RUNNING,
          adbEndpoint: '10.0.0.2:5555',
          specRevision: 1n,
        },
      },
    });
    const running = await waitFor(
      'device running',
      () => device(placed.deviceId),
      (d) => d.state === 'running',
    );
    assert.equal(running.adb_endpoint, '10.0.0.2:5555');
    assert.deepEqual(
      (await events(placed.deviceId)).map((e) => `${e.from_state}>${e.to_state}`),
      ['null>scheduled', 'scheduled>creating', 'creating>running'],
    );
    // A report the state machine cannot follow is kept as the agent's view, not applied.
    agent.send({
      case: 'deviceStatus',
      value: { device: { deviceId: placed.deviceId, state: agentv1.DeviceState.DELETED } },
    });
    const refused = await waitFor(
      'refusal recorded',
      () => device(placed.deviceId),
      (d) => d.state_message.includes('agent observes deleted'),
    );
    assert.equal(refused.state, 'running');
  });

  test('unknown, revoked and other hosts’ credentials are UNAUTHENTICATED', async () => {
    const good = await enrollTestHost(db());
    const revoked = await enrollTestHost(db(), { revoked: true });
    const cases = [
      { hostId: good.hostId, credential: `${good.credentialId}.wrong-secret` },
      { hostId: good.hostId, credential: 'hcred_unknown.secret' },
      { hostId: revoked.hostId, credential: revoked.credential },
      { hostId: revoked.hostId, credential: good.credential },
      { hostId: good.hostId, credential: '' },
    ];
    for (const hello of cases) {
      const status = await connect(hello).ended;
      assert.equal(status.code, grpc.status.UNAUTHENTICATED, JSON.stringify(hello));
    }
    assert.equal((await host(good.hostId)).connection, 'new');

    // A live stream whose credential is revoked is cut off.
    const live = connect(good);
    await live.next('welcome');
    assert.equal(plane.deps.gateway.disconnect(good.hostId, 'credential revoked'), true);
    const status = await live.ended;
    assert.equal(status.code, grpc.status.UNAUTHENTICATED);
    assert.equal(status.details, 'credential revoked');
    assert.equal(plane.deps.gateway.disconnect(good.hostId, 'again'), false);
  });

  test('an unsupported protocol version is FAILED_PRECONDITION naming the supported range', async () => {
    const enrolled = await enrollTestHost(db());
    const status = await connect({ ...enrolled, protocolVersion: 7 }).ended;
    assert.equal(status.code, grpc.status.FAILED_PRECONDITION);
    assert.match(status.details, /protocol_version 7 .*1\.\.1/);
  });

  test('an agent release outside the supported range is FAILED_PRECONDITION naming it; the previous minor is welcomed', async () => {
    const enrolled = await enrollTestHost(db());
    const status = await connect({ ...enrolled, agentVersion: '0.0.1' }).ended;
    assert.equal(status.code, grpc.status.FAILED_PRECONDITION);
    assert.match(
      status.details,
      /agent_version 0\.0\.1 is too old: this control plane \(\d+\.\d+\.\d+\) accepts agents/,
    );
    assert.equal((await host(enrolled.hostId)).connection, 'new', 'a refused hello records nothing');
    const range = agentVersionRange();
    const previous = connect({ ...enrolled, agentVersion: `${range.min.major}.${range.min.minor}.0` });
    await previous.next('welcome');
  });

  test('a stream whose first message is not Hello is refused', async () => {
    const agent = new TestAgent(client);
    agents.push(agent);
    agent.heartbeat();
    assert.equal((await agent.ended).code, grpc.status.INVALID_ARGUMENT);
  });
});

describe('liveness', () => {
  /** Each agent heartbeats and the gateway has handled it; then one liveness pass runs at the clock's time. */
  async function beat(...beating: TestAgent[]): Promise<void> {
    for (const agent of beating) {
      agent.heartbeat();
      await agent.roundTrip();
    }
    await checkLiveness(plane);
  }

  /** Heartbeats every interval for `ms` of clock time, with a liveness pass after each. */
  async function beatFor(ms: number, ...beating: TestAgent[]): Promise<void> {
    for (let elapsed = 0; elapsed < ms; elapsed += HEARTBEAT_MS) {
      clock.advance(HEARTBEAT_MS);
      await beat(...beating);
    }
  }

  test('silent hosts go unreachable then their phones lost; heartbeating ones stay; a reconnect heals', async () => {
    const silent = await enrollTestHost(db());
    const steady = await enrollTestHost(db());
    const lostOne = await insertTestDevice(db(), { hostId: silent.hostId, state: 'running' });
    const keptOne = await insertTestDevice(db(), { hostId: steady.hostId, state: 'running' });
    const a = connect(silent);
    const b = connect(steady);
    await a.next('welcome');
    await b.next('welcome');
    await beatFor(2 * TTL_MS, a, b);
    assert.equal((await host(silent.hostId)).connection, 'ready', 'heartbeats keep the host ready');
    assert.ok((await host(steady.hostId)).load.cpuPercent === 12.5, 'heartbeat load recorded');
    assert.ok((await b.next('ping')).nonce > 0n, 'the gateway pings live streams');

    // a falls silent; b goes on. Just within the TTL a is still ready, just past it it is not.
    clock.advance(TTL_MS - 1);
    await beat(b);
    assert.equal((await host(silent.hostId)).connection, 'ready', 'silent for less than the TTL');
    assert.ok(plane.deps.gateway.connectedHosts().includes(silent.hostId), 'its stream stays open');
    clock.advance(2);
    await beat(b);
    const unreachable = await host(silent.hostId);
    assert.equal(unreachable.connection, 'unreachable');
    assert.ok(unreachable.unreachable_since);
    const status = await a.ended;
    assert.equal(status.code, grpc.status.UNAVAILABLE, 'the silent stream is ended');

    // Its phone is lost once it has been unreachable for the grace, not before.
    clock.advance(GRACE_MS - 2);
    await beat(b);
    assert.equal((await device(lostOne.deviceId)).state, 'running', 'within the grace');
    clock.advance(2);
    await beat(b);
    assert.equal((await device(lostOne.deviceId)).state, 'lost');
    const lostEvent = (await events(lostOne.deviceId)).at(-1);
    assert.equal(lostEvent?.reason, 'HOST_UNREACHABLE');

    const back = connect({
      ...silent,
      devices: [
        { deviceId: lostOne.deviceId, state: agentv1.DeviceState.RUNNING, adbEndpoint: '10.0.0.9:5555' },
      ],
    });
    await back.next('welcome');
    assert.equal((await device(lostOne.deviceId)).state, 'running', 'inventory moves it out of lost');
    assert.equal((await host(silent.hostId)).connection, 'ready');
    assert.equal((await host(silent.hostId)).unreachable_since, null);

    // Well past a TTL and a grace, both hosts heartbeating.
    await beatFor(2 * (TTL_MS + GRACE_MS), back, b);
    assert.equal((await device(keptOne.deviceId)).state, 'running');
    assert.deepEqual(
      (await events(keptOne.deviceId)).filter((e) => e.to_state !== 'scheduled'),
      [],
      'no false lost on a heartbeating host',
    );
    assert.equal((await device(lostOne.deviceId)).state, 'running', 'no lost again after the reconnect');
    assert.equal((await host(silent.hostId)).connection, 'ready');
  });

  test('a newer stream supersedes the older one without flapping the host', async () => {
    const enrolled = await enrollTestHost(db());
    const { deviceId } = await insertTestDevice(db(), { hostId: enrolled.hostId, state: 'running' });
    const first = connect(enrolled);
    await first.next('welcome');
    const pending = assert.rejects(
      plane.deps.gateway.command(
        enrolled.hostId,
        deviceId,
        { case: 'reboot', value: {} },
        new Date(clock.now().getTime() + 10_000),
      ),
      UnavailableError,
    );
    await first.next('command');
    const second = connect(enrolled);
    await second.next('welcome');
    await second.next('desiredDevices');
    const status = await first.ended;
    assert.equal(status.code, grpc.status.ABORTED);
    assert.match(status.details, /superseded/);
    await pending;
    assert.equal((await host(enrolled.hostId)).connection, 'ready');
    assert.deepEqual(
      plane.deps.gateway.connectedHosts().filter((h) => h === enrolled.hostId),
      [enrolled.hostId],
    );
    // The new stream carries the host across more than a TTL: the old one's end took nothing with it.
    await beatFor(2 * TTL_MS, second);
    assert.equal((await host(enrolled.hostId)).connection, 'ready');
    assert.ok(plane.deps.gateway.connectedHosts().includes(enrolled.hostId));
  });
});
