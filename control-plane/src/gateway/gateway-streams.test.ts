// What flows over a live agent stream: desired-state deltas, commands and their failures, usage
// samples with their acknowledgements, drains, and the cut-off of an agent that stops reading.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import * as grpc from '@grpc/grpc-js';
import { DeadlineExceededError, UnavailableError } from '../errors.js';
import type { ControlPlane } from '../server.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { createAgentClient, TestAgent } from './test-agent.js';
import { enrollTestHost, insertTestDevice, type TestHost } from './testing.js';

let testPlane: TestControlPlane;
let plane: ControlPlane;
let client: ReturnType<typeof createAgentClient>;
const agents: TestAgent[] = [];

before(async () => {
  testPlane = await startTestControlPlane({ grpcHost: '127.0.0.1' }, { gateway: { maxQueuedMessages: 50 } });
  plane = testPlane.plane;
  client = createAgentClient(plane.grpcPort, plane.deps.gateway.caPem ?? '');
});

after(async () => {
  for (const agent of agents) agent.cancel();
  client.close();
  await testPlane.close();
});

const db = () => plane.deps.db;
const gateway = () => plane.deps.gateway;

async function connected(enrolled: TestHost): Promise<TestAgent> {
  const agent = TestAgent.connect(client, enrolled);
  agents.push(agent);
  await agent.next('welcome');
  await agent.next('desiredDevices');
  return agent;
}

const bumpRevision = (hostId: string) =>
  db()
    .updateTable('host')
    .set((eb) => ({ desired_revision: eb('desired_revision', '+', 1) }))
    .where('id', '=', hostId)
    .execute();

const inFuture = (ms: number) => new Date(Date.now() + ms);

describe('desired state', () => {
  test('one change rides a delta with the new revision; a batch coalesces into one full set', async () => {
    const enrolled = await enrollTestHost(db());
    const agent = await connected(enrolled);

    const first = await insertTestDevice(db(), { hostId: enrolled.hostId, allocate: true });
    await bumpRevision(enrolled.hostId);
    gateway().desiredChanged(enrolled.hostId);
    const upsert = await agent.next('deviceUpsert');
    assert.equal(upsert.revision, 2n);
    assert.equal(upsert.device?.deviceId, first.deviceId);

    // A batch create: one commit, then a desiredChanged per device.
    for (let k = 0; k < 3; k++) await insertTestDevice(db(), { hostId: enrolled.hostId, allocate: true });
    await bumpRevision(enrolled.hostId);
    for (let k = 0; k < 3; k++) gateway().desiredChanged(enrolled.hostId);
    const full = await agent.next('desiredDevices');
    assert.equal(full.revision, 3n);
    assert.equal(full.devices.length, 4);

    await db().updateTable('device').set({ state: 'deleting' }).where('id', '=', first.deviceId).execute();
    await bumpRevision(enrolled.hostId);
    gateway().desiredChanged(enrolled.hostId);
    const remove = await agent.next('deviceRemove');
    assert.deepEqual([remove.revision, remove.deviceId], [4n, first.deviceId]);
    assert.equal(
      agent.received.filter((m) => m.body.case?.startsWith('device') || m.body.case === 'desiredDevices')
        .length,
      0,
      'nothing else was sent',
    );

    // The agent finishes the deletion: the device is deleted and its allocation released.
    agent.send({
      case: 'deviceStatus',
      value: { device: { deviceId: first.deviceId, state: agentv1.DeviceState.DELETED } },
    });
    const deleted = await waitFor(
      'deleted',
      () => db().selectFrom('device').selectAll().where('id', '=', first.deviceId).executeTakeFirstOrThrow(),
      (d) => d.state === 'deleted',
    );
    assert.ok(deleted.delete_time);
    const host = await db()
      .selectFrom('host')
      .selectAll()
      .where('id', '=', enrolled.hostId)
      .executeTakeFirstOrThrow();
    assert.equal(host.allocated_devices, 3);
    assert.equal(host.allocated_vcpu_millicores, 3 * 2000);

    assert.equal(gateway().drain(enrolled.hostId, 'rack maintenance'), true);
    assert.equal((await agent.next('drain')).reason, 'rack maintenance');
    assert.equal(gateway().drain('host_not_connected', 'x'), false);
  });
});

describe('commands', () => {
  test('a command resolves with the agent’s result, matched by id', async () => {
    const enrolled = await enrollTestHost(db());
    const agent = await connected(enrolled);
    const result = gateway().command(
      enrolled.hostId,
      'dev_1',
      { case: 'shell', value: { command: 'getprop ro.product.model' } },
      inFuture(5000),
    );
    const command = await agent.next('command');
    assert.equal(command.deviceId, 'dev_1');
    assert.equal(command.kind.case, 'shell');
    agent.send({
      case: 'commandResult',
      value: {
        commandId: command.commandId,
        code: agentv1.CommandCode.OK,
        result: { case: 'shell', value: { exitCode: 0, stdout: Buffer.from('Pixel 8\n') } },
      },
    });
    const answered = await result;
    assert.equal(answered.code, agentv1.CommandCode.OK);
    assert.equal(
      answered.result.case === 'shell' && Buffer.from(answered.result.value.stdout).toString(),
      'Pixel 8\n',
    );
  });

  test('no result by the deadline is DEADLINE_EXCEEDED; a dropped stream or no stream is UNAVAILABLE', async () => {
    const enrolled = await enrollTestHost(db());
    const agent = await connected(enrolled);
    const late = assert.rejects(
      gateway().command(enrolled.hostId, 'dev_1', { case: 'reboot', value: {} }, inFuture(200)),
      DeadlineExceededError,
    );
    await agent.next('command');
    await late;

    const dropped = assert.rejects(
      gateway().command(enrolled.hostId, 'dev_1', { case: 'screenshot', value: {} }, inFuture(10_000)),
      UnavailableError,
    );
    await agent.next('command');
    agent.cancel();
    await dropped;
    await waitFor(
      'stream gone',
      () => gateway().connectedHosts(),
      (hosts) => !hosts.includes(enrolled.hostId),
    );
    await assert.rejects(
      gateway().command(enrolled.hostId, 'dev_1', { case: 'reboot', value: {} }, inFuture(1000)),
      UnavailableError,
    );
  });
});

describe('usage', () => {
  test('samples are stored once and acknowledged up to the highest contiguous sequence', async () => {
    const enrolled = await enrollTestHost(db());
    const start = new Date('2026-11-23T10:00:00Z');
    const { deviceId, tenantId } = await insertTestDevice(db(), {
      hostId: enrolled.hostId,
      state: 'running',
      placedAt: start,
    });
    const sample = (sequence: number, tenant = tenantId) => ({
      sequence: BigInt(sequence),
      deviceId,
      tenantId: tenant,
      startTime: timestampFromDate(new Date(start.getTime() + sequence * 60_000)),
      endTime: timestampFromDate(new Date(start.getTime() + (sequence + 1) * 60_000)),
      vcpuMillicores: 2000,
      memoryMib: 4096,
      storageGib: 16,
      state: agentv1.DeviceState.RUNNING,
    });
    const agent = await connected(enrolled);
    agent.send({
      case: 'usageReport',
      value: { samples: [sample(1), sample(2), sample(4, 'tenant_forged')] },
    });
    assert.equal((await agent.next('usageAck')).sequence, 2n);
    agent.send({ case: 'usageReport', value: { samples: [sample(3)] } });
    assert.equal((await agent.next('usageAck')).sequence, 4n);
    agent.send({ case: 'usageReport', value: { samples: [sample(1), sample(2), sample(3), sample(4)] } });
    assert.equal((await agent.next('usageAck')).sequence, 4n);

    const rows = await db()
      .selectFrom('usage_sample')
      .select(['sequence', 'tenant_id'])
      .where('host_id', '=', enrolled.hostId)
      .orderBy('sequence')
      .execute();
    assert.deepEqual(
      rows.map((r) => r.sequence),
      [1, 2, 3, 4],
    );
    assert.ok(
      rows.every((r) => r.tenant_id === tenantId),
      'a sample naming another tenant is stored under its device’s',
    );
    const metrics = await plane.deps.metrics.registry.getSingleMetricAsString('cphone_usage_samples_total');
    assert.match(metrics, /result="duplicate"[^}]*} 4$/m);

    agent.cancel();
    const again = TestAgent.connect(client, enrolled);
    agents.push(again);
    assert.equal((await again.next('welcome')).usageAckSequence, 4n);
  });
});

describe('backpressure', () => {
  test('an agent that stops reading is cut off with RESOURCE_EXHAUSTED and its commands fail', async () => {
    const enrolled = await enrollTestHost(db());
    const agent = await connected(enrolled);
    agent.call.pause();
    const payload = 'x'.repeat(16 * 1024);
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, () =>
        gateway()
          .command(enrolled.hostId, 'dev_1', { case: 'shell', value: { command: payload } }, inFuture(10_000))
          .then(
            () => 'answered',
            (error: Error) => error.constructor.name,
          ),
      ),
    );
    assert.deepEqual([...new Set(outcomes)], ['UnavailableError']);
    assert.ok(!gateway().connectedHosts().includes(enrolled.hostId));
    agent.call.resume();
    assert.equal((await agent.ended).code, grpc.status.RESOURCE_EXHAUSTED);
  });
});
