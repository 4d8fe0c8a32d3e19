// Two control-plane replicas on one database, as behind a load balancer: a host's stream lives on
// one of them, and whatever the other is asked to do for that host (commands, desired-state
// changes, revocation) reaches it through the database's NOTIFY; one replica leads the periodic jobs
// and another takes over when it goes.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Client, createClient } from '@connectrpc/connect';
import { agentv1, HostService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { loadConfig } from '../config.js';
import { DeadlineExceededError, UnavailableError } from '../errors.js';
import { type ControlPlane, startControlPlane } from '../server.js';
import { sharedTestDatabase } from '../test-control-plane.js';
import { bearerTransport } from '../testing.js';
import { createAgentClient, TestAgent } from './test-agent.js';
import { enrollTestHost, insertTestDevice, type TestHost } from './testing.js';

let dataDir: string;
let closeDatabase: () => Promise<void>;
let a: ControlPlane;
let b: ControlPlane;
let toA: ReturnType<typeof createAgentClient>;
let toB: ReturnType<typeof createAgentClient>;
const agents: TestAgent[] = [];
const planes: ControlPlane[] = [];

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cphone-replicas-'));
  // PostgreSQL: both replicas connect to one database. PGlite: both share one instance in process.
  const { databaseUrl, database, close } = await sharedTestDatabase();
  closeDatabase = close;
  const start = () =>
    startControlPlane(
      // One data dir: the second replica loads the gateway CA and certificate the first made.
      // The test agents send no heartbeats: a TTL no slow run reaches keeps their streams open.
      loadConfig(
        {},
        { dataDir, databaseUrl, httpPort: 0, grpcPort: 0, grpcHost: '127.0.0.1', heartbeatTtlMs: 600_000 },
      ),
      { logger: pino({ level: 'silent' }), leaderPollMs: 100, ...(database ? { database } : {}) },
    );
  a = await start();
  b = await start();
  planes.push(a, b);
  toA = createAgentClient(a.grpcPort, a.deps.gateway.caPem ?? '');
  toB = createAgentClient(b.grpcPort, b.deps.gateway.caPem ?? '');
});

after(async () => {
  for (const agent of agents) agent.cancel();
  toA?.close();
  toB?.close();
  for (const plane of planes) await plane.close();
  await closeDatabase?.();
  await rm(dataDir, { recursive: true, force: true });
});

const db = () => a.deps.db;
const inFuture = (ms: number) => new Date(Date.now() + ms);

async function connect(client: typeof toA, host: TestHost): Promise<TestAgent> {
  const agent = TestAgent.connect(client, host);
  agents.push(agent);
  await agent.next('welcome');
  await agent.next('desiredDevices');
  return agent;
}

/** Asks `plane` for properties of a device on `hostId`, wherever the host's stream is. */
const getProp = (plane: ControlPlane, hostId: string, deviceId: string, key: string, timeoutMs: number) =>
  plane.deps.gateway.command(
    hostId,
    deviceId,
    { case: 'getProp', value: { keys: [key] } },
    inFuture(timeoutMs),
  );

const holder = async (hostId: string) =>
  (await db().selectFrom('host').select('gateway_replica').where('id', '=', hostId).executeTakeFirstOrThrow())
    .gateway_replica;

test('a command given to the replica without the stream runs on the one holding it, large results included', async () => {
  const host = await enrollTestHost(db());
  const { deviceId } = await insertTestDevice(db(), { hostId: host.hostId, state: 'running' });
  const agent = await connect(toA, host);
  assert.equal(await holder(host.hostId), a.cluster.replicaId);

  // 200 KiB of output: far past what one NOTIFY carries, so the result rides the relay table.
  const stdout = new Uint8Array(200 * 1024).map((_, i) => i % 251);
  const pending = b.deps.gateway.command(
    host.hostId,
    deviceId,
    { case: 'shell', value: { command: 'cat /data/big' } },
    inFuture(5000),
  );
  const command = await agent.next('command');
  assert.equal(command.deviceId, deviceId);
  assert.equal(command.kind.case, 'shell');
  assert.equal(command.kind.value?.command, 'cat /data/big');
  agent.send({
    case: 'commandResult',
    value: {
      commandId: command.commandId,
      code: agentv1.CommandCode.OK,
      result: { case: 'shell', value: { exitCode: 3, stdout } },
    },
  });
  const result = await pending;
  assert.equal(result.code, agentv1.CommandCode.OK);
  assert.equal(result.result.case, 'shell');
  assert.equal(result.result.value?.exitCode, 3);
  assert.deepEqual(result.result.value?.stdout, stdout);
  const relayed = await b.deps.metrics.clusterMessages.get();
  assert.ok(
    relayed.values.some((v) => v.labels.direction === 'in' && v.labels.via === 'relay' && v.value >= 1),
    'the large result came through the relay table',
  );
  assert.equal(
    (await db().selectFrom('gateway_relay').select('id').execute()).length,
    0,
    'a relay row addressed to one replica is gone once read',
  );

  // No result before the deadline: the replica that was asked says so.
  const late = getProp(b, host.hostId, deviceId, 'ro.x', 400);
  await agent.next('command', 2000, (c) => c.kind.case === 'getProp');
  await assert.rejects(late, DeadlineExceededError);
});

test('desired-state changes and revocation made on one replica reach the stream on the other', async () => {
  const host = await enrollTestHost(db());
  const agent = await connect(toA, host);
  const { deviceId } = await insertTestDevice(db(), {
    hostId: host.hostId,
    state: 'scheduled',
    allocate: true,
  });
  await db()
    .updateTable('host')
    .set((eb) => ({ desired_revision: eb('desired_revision', '+', 1) }))
    .where('id', '=', host.hostId)
    .execute();
  b.deps.gateway.desiredChanged(host.hostId);
  const upsert = await agent.next('deviceUpsert');
  assert.equal(upsert.device?.deviceId, deviceId);

  const token = a.bootstrapToken ?? '';
  const hostsOnB: Client<typeof HostService> = createClient(HostService, bearerTransport(b.httpUrl, token));
  await hostsOnB.revokeHostCredential({ hostId: host.hostId });
  const ended = await agent.ended;
  assert.equal(ended.code, grpc.status.UNAUTHENTICATED);
  await waitFor(
    'the stream record released',
    () => holder(host.hostId),
    (h) => h === null,
  );
  await assert.rejects(getProp(b, host.hostId, deviceId, 'ro.x', 2000), UnavailableError);
});

test('an agent reconnecting through the other replica supersedes its stream there, and commands follow it', async () => {
  const host = await enrollTestHost(db());
  const { deviceId } = await insertTestDevice(db(), { hostId: host.hostId, state: 'running' });
  const first = await connect(toA, host);
  const second = await connect(toB, host);
  const ended = await first.ended;
  assert.equal(ended.code, grpc.status.ABORTED);
  assert.match(ended.details, /superseded/);
  assert.equal(await holder(host.hostId), b.cluster.replicaId);

  const pending = getProp(a, host.hostId, deviceId, 'ro.build', 5000);
  const command = await second.next('command');
  second.send({
    case: 'commandResult',
    value: {
      commandId: command.commandId,
      code: agentv1.CommandCode.OK,
      result: { case: 'getProp', value: { properties: { 'ro.build': '14' } } },
    },
  });
  const result = await pending;
  assert.equal(result.result.case, 'getProp');
  assert.deepEqual(result.result.value?.properties, { 'ro.build': '14' });
});

test('one replica leads the periodic jobs; when it goes, the other takes over', async () => {
  await waitFor(
    'a leader',
    () => [a.cluster.isLeader(), b.cluster.isLeader()],
    (leads) => leads.includes(true),
  );
  assert.notEqual(a.cluster.isLeader(), b.cluster.isLeader(), 'exactly one leads');
  const [leader, follower] = a.cluster.isLeader() ? [a, b] : [b, a];
  const gauge = async (plane: ControlPlane) =>
    (await plane.deps.metrics.clusterLeader.get()).values[0]?.value;
  assert.equal(await gauge(leader), 1);
  assert.equal(await gauge(follower), 0);

  // A host whose stream is on the leader: once the leader is gone, the follower says so at once.
  const host = await enrollTestHost(db());
  const { deviceId } = await insertTestDevice(db(), { hostId: host.hostId, state: 'running' });
  const agent = await connect(leader === a ? toA : toB, host);
  await leader.close();
  planes.splice(planes.indexOf(leader), 1);
  assert.equal((await agent.ended).code, grpc.status.UNAVAILABLE);
  await waitFor('the follower leads', () => follower.cluster.isLeader(), Boolean, { timeoutMs: 5000 });
  assert.equal(await gauge(follower), 1);
  await assert.rejects(getProp(follower, host.hostId, deviceId, 'ro.x', 2000), UnavailableError);
});
