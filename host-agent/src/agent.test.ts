import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import { agentv1 } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { type Agent, startAgent } from './agent.js';
import { loadConfig } from './config.js';
import { createMetrics } from './metrics.js';
import { RecordingRuntime } from './reconciler/testing.js';
import { createSimRuntime, type SimRuntime } from './runtime/index.js';
import { TestControlPlane, type TestControlPlaneOptions } from './session/testing.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const desiredSet = (revision: bigint, ...ids: string[]) =>
  create(agentv1.DesiredDevicesSchema, {
    revision,
    devices: ids.map((deviceId) =>
      create(agentv1.DesiredDeviceSchema, {
        deviceId,
        tenantId: 't-1',
        specRevision: 1n,
        powerState: agentv1.PowerState.RUNNING,
        restartPolicy: agentv1.RestartPolicy.ALWAYS,
        spec: { imageRef: 'cphone/virtual-phone', vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
      }),
    ),
  });

interface Setup {
  cp: TestControlPlane;
  agent: Agent;
  sim: SimRuntime;
  runtime: RecordingRuntime;
  dataDir: string;
}

async function setup(
  cpOptions: TestControlPlaneOptions = {},
  env: Record<string, string> = {},
  existing?: { cp?: TestControlPlane; dataDir?: string },
): Promise<Setup> {
  const cp = existing?.cp ?? (await TestControlPlane.create(cpOptions));
  if (existing?.cp === undefined) cleanups.push(() => cp.stop());
  const dataDir = existing?.dataDir ?? (await mkdtemp(join(tmpdir(), 'cphone-agent-')));
  if (existing?.dataDir === undefined) cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const caFile = join(dataDir, 'ca.pem');
  await writeFile(caFile, cp.ca.cert);
  const config = loadConfig({
    CPHONE_HOST_ID: 'h-1',
    CPHONE_HOST_CREDENTIAL: 'secret-1',
    CPHONE_CONTROL_PLANE: `127.0.0.1:${cp.port}`,
    CPHONE_CA_FILE: caFile,
    CPHONE_RUNTIME: 'sim',
    CPHONE_AGENT_DATA_DIR: dataDir,
    CPHONE_AGENT_HTTP_PORT: '0',
    // Streaming has its own suites (stream/); these are about the control session.
    CPHONE_STREAM: 'off',
    CPHONE_LABELS: 'zone=test',
    CPHONE_MAX_DEVICES: '12',
    CPHONE_USAGE_INTERVAL_MS: '3600000',
    ...env,
  });
  const sim = await createSimRuntime({ dataDir: join(dataDir, 'sim') });
  const runtime = new RecordingRuntime(sim);
  const agent = await startAgent(config, {
    logger: pino({ level: 'silent' }),
    metrics: createMetrics({ defaultMetrics: false }),
    runtime,
    session: { backoff: { baseMs: 20, capMs: 200 } },
    reconciler: { retryBaseMs: 10, retryCapMs: 50, restartBaseMs: 10, restartCapMs: 50 },
    usageResendAfterMs: 300,
  });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await agent.close();
    closed = true;
    await sim.close().catch(() => undefined);
  });
  return { cp, agent, sim, runtime, dataDir };
}

const lastStatus = (cp: TestControlPlane, deviceId: string) =>
  cp
    .of('deviceStatus')
    .map((s) => s.device)
    .filter((d) => d?.deviceId === deviceId)
    .at(-1);

test('Hello carries identity, capacity and inventory; heartbeats carry /proc figures; reconnects after a control-plane restart', async () => {
  const s = await setup({ desired: () => desiredSet(1n, 'd-1') });
  await waitFor(
    'd-1 RUNNING',
    () => lastStatus(s.cp, 'd-1')?.state,
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  const hello = s.cp.hellos[0]!;
  assert.equal(hello.hostId, 'h-1');
  assert.equal(hello.credential, 'secret-1');
  assert.equal(hello.protocolVersion, 1);
  assert.equal(hello.runtimeKind, 'sim');
  assert.deepEqual(hello.labels, { zone: 'test' });
  assert.equal(hello.capacity?.devices, 12);
  assert.ok((hello.capacity?.memoryBytes ?? 0n) > 0n && (hello.capacity?.vcpuMillicores ?? 0n) >= 1000n);
  assert.equal(hello.agentInstanceId, s.agent.instanceId);
  assert.equal(hello.desiredRevision, 0n);
  assert.deepEqual(hello.devices, []);

  await waitFor(
    'three heartbeats',
    () => s.cp.of('heartbeat').length,
    (n) => n >= 3,
  );
  const beats = s.cp.of('heartbeat');
  assert.deepEqual(
    beats.slice(0, 3).map((b) => b.seq),
    [1n, 2n, 3n],
  );
  const load = beats.at(-1)!.load!;
  assert.ok(load.memoryTotalBytes > 0n && load.diskTotalBytes > 0n && load.cpuPercent >= 0);
  await waitFor(
    'running device counted',
    () => s.cp.of('heartbeat').at(-1)?.load?.runningDevices,
    (v) => v === 1,
  );

  // The control plane goes away and comes back on the same address.
  s.cp.stop();
  await waitFor(
    'session down',
    () => s.agent.session.connected,
    (v) => !v,
  );
  assert.equal((await s.sim.inspect('d-1'))?.state, 'running', 'the phone keeps running while disconnected');
  await s.cp.start();
  await waitFor(
    'second Hello',
    () => s.cp.hellos.length,
    (n) => n >= 2,
  );
  const again = s.cp.hellos[1]!;
  assert.equal(again.agentInstanceId, hello.agentInstanceId, 'a reconnect, not a restart');
  assert.equal(again.desiredRevision, 1n);
  assert.deepEqual(
    again.devices.map((d) => [d.deviceId, agentv1.DeviceState[d.state], d.adbEndpoint !== '']),
    [['d-1', 'RUNNING', true]],
  );
  await waitFor('welcomed again', () => s.agent.session.connected, Boolean);
  assert.deepEqual(
    s.runtime.calls.filter(([op]) => op === 'stop' || op === 'remove'),
    [],
  );
});

test('commands are answered: NOT_FOUND, DEADLINE_EXCEEDED, and a shell command run over ADB on the phone', async () => {
  const s = await setup({ desired: () => desiredSet(1n, 'd-1') });
  await waitFor(
    'd-1 RUNNING',
    () => lastStatus(s.cp, 'd-1')?.state,
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  const future = timestampFromMs(Date.now() + 10_000);
  s.cp.send({
    body: {
      case: 'command',
      value: {
        commandId: 'c-1',
        deviceId: 'nope',
        deadline: future,
        kind: { case: 'screenshot', value: {} },
      },
    },
  });
  s.cp.send({
    body: {
      case: 'command',
      value: {
        commandId: 'c-2',
        deviceId: 'd-1',
        deadline: timestampFromMs(Date.now() - 1000),
        kind: { case: 'screenshot', value: {} },
      },
    },
  });
  s.cp.send({
    body: {
      case: 'command',
      value: {
        commandId: 'c-3',
        deviceId: 'd-1',
        deadline: future,
        kind: { case: 'shell', value: { command: 'echo hello' } },
      },
    },
  });
  await waitFor(
    'three results',
    () => s.cp.of('commandResult').length,
    (n) => n >= 3,
  );
  const byId = new Map(s.cp.of('commandResult').map((r) => [r.commandId, r]));
  assert.equal(byId.get('c-1')?.code, agentv1.CommandCode.NOT_FOUND);
  assert.equal(byId.get('c-2')?.code, agentv1.CommandCode.DEADLINE_EXCEEDED);
  const shell = byId.get('c-3');
  assert.equal(shell?.code, agentv1.CommandCode.OK, shell?.message);
  assert.equal(shell?.result.case, 'shell');
  assert.equal(
    shell?.result.case === 'shell' && Buffer.from(shell.result.value.stdout).toString().trim(),
    'hello',
  );
});

test('Ping is answered with Pong; Drain is logged and counted', async () => {
  const s = await setup();
  await waitFor('welcomed', () => s.agent.session.connected, Boolean);
  s.cp.send({ body: { case: 'ping', value: { nonce: 42n } } });
  s.cp.send({ body: { case: 'drain', value: { reason: 'kernel upgrade' } } });
  await waitFor(
    'pong',
    () => s.cp.of('pong').length,
    (v) => v === 1,
  );
  assert.equal(s.cp.of('pong')[0]?.nonce, 42n);
  await waitFor('draining', () => s.agent.draining, Boolean);
  const drains = await s.agent.metrics.drains.get();
  assert.equal(drains.values[0]?.value, 1);
});

test('usage samples are resent until acknowledged, across reconnects and agent restarts, in order', async () => {
  const s = await setup({ ackUsage: false, desired: () => desiredSet(1n, 'd-1', 'd-2') });
  await waitFor(
    'both RUNNING',
    () => ['d-1', 'd-2'].map((id) => lastStatus(s.cp, id)?.state),
    (states) => states.every((state) => state === agentv1.DeviceState.RUNNING),
  );
  await s.agent.sampler.sampleNow();
  await s.agent.sampler.sampleNow(Date.now() + 60_000);
  // In order; on a loaded machine the first two may already be resent (no ack) before the last two.
  const firstSeen = () => [...new Set(s.cp.usageReceived)];
  await waitFor(
    'four samples sent',
    () => firstSeen().length,
    (n) => n >= 4,
  );
  assert.deepEqual(firstSeen().slice(0, 4), [1n, 2n, 3n, 4n]);
  const sample = s.cp.of('usageReport')[0]!.samples[0]!;
  assert.equal(sample.vcpuMillicores, 1000);
  assert.equal(sample.memoryMib, 1024);
  assert.equal(sample.state, agentv1.DeviceState.RUNNING);
  // No ack: the same samples come again on the same stream after the resend delay.
  await waitFor(
    'resent',
    () => s.cp.usageReceived.filter((q) => q === 1n).length,
    (n) => n >= 2,
  );

  // The agent restarts (its process ends without acks); the control plane starts acknowledging.
  const dataDir = s.dataDir;
  await s.agent.close();
  await s.sim.close();
  s.cp.options.ackUsage = true;
  const before = s.cp.usageReceived.length;
  const restarted = await setup({}, {}, { cp: s.cp, dataDir });
  await waitFor(
    'spool drained',
    () => restarted.agent.spool.pendingCount,
    (v) => v === 0,
  );
  assert.deepEqual(
    s.cp.usageReceived.slice(before, before + 4),
    [1n, 2n, 3n, 4n],
    'same sequences after a restart',
  );
  assert.equal(s.cp.usageStored, 4n);

  // Acknowledged samples are never sent again; the sequence continues.
  await restarted.agent.sampler.sampleNow(Date.now() + 120_000);
  await waitFor(
    'acked 6',
    () => s.cp.usageStored,
    (v) => v === 6n,
  );
  s.cp.stop();
  const count = s.cp.usageReceived.length;
  await s.cp.start();
  await waitFor(
    'reconnected',
    () => ({ hellos: s.cp.hellos.length, connected: restarted.agent.session.connected }),
    (v) => v.hellos >= 3 && v.connected,
  );
  // Samples taken now go out after anything the new stream would resend (the sender sends in
  // sequence order), so once they are in, a resend would have come first.
  const fresh = (await restarted.agent.sampler.sampleNow(Date.now() + 180_000)).map((q) =>
    BigInt(q.sequence),
  );
  assert.deepEqual(fresh, [7n, 8n]);
  await waitFor(
    'the fresh samples',
    () => s.cp.usageReceived.slice(count),
    (received) => fresh.every((q) => received.includes(q)),
  );
  assert.deepEqual(
    s.cp.usageReceived.slice(count),
    fresh,
    'nothing resent after Welcome.usage_ack_sequence covers it',
  );
});

test('a rejected session backs off at the cap instead of hammering', async () => {
  const s = await setup({ reject: grpc.status.UNAUTHENTICATED });
  await waitFor(
    'two rejected attempts',
    () => s.cp.hellos.length,
    (n) => n >= 2,
    { timeoutMs: 10_000 },
  );
  const rejected = await s.agent.metrics.sessionAttempts.get();
  assert.ok(rejected.values.some((v) => v.labels.outcome === 'rejected' && v.value >= 1));
  assert.equal(s.agent.session.connected, false);
});

test('shutdown closes the session and the HTTP server and leaves phones running', async () => {
  const s = await setup({ desired: () => desiredSet(1n, 'd-1') });
  await waitFor(
    'd-1 RUNNING',
    () => lastStatus(s.cp, 'd-1')?.state,
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  const base = `http://127.0.0.1:${s.agent.httpPort}`;
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /cphone_agent_session_connected\{service="host-agent"\} 1/);

  await s.agent.close();
  await waitFor(
    'stream closed',
    () => s.cp.streams,
    (v) => v === 0,
  );
  await assert.rejects(fetch(`${base}/healthz`));
  assert.deepEqual(
    s.runtime.calls.filter(([op]) => op === 'stop' || op === 'remove'),
    [],
  );
  assert.equal((await s.sim.inspect('d-1'))?.state, 'running');
});

test('a stream from a pinging control plane that falls silent past the heartbeat TTL is dialled again', async () => {
  const ttlMs = 300;
  const s = await setup({ heartbeatTtlMs: ttlMs });
  await waitFor('welcomed', () => s.agent.session.connected, Boolean);
  const welcomedAt = Date.now();
  // The agent's own heartbeats show how far its clock got on this stream: one sent two TTLs after
  // the Welcome came after any silence check that could have fired (a reconnect would have sent a
  // second Hello before any heartbeat of its new stream).
  await waitFor(
    'a heartbeat two TTLs after the Welcome',
    () => s.cp.of('heartbeat').map((b) => (b.sentAt ? timestampMs(b.sentAt) : 0)),
    (sent) => sent.some((ms) => ms >= welcomedAt + 2 * ttlMs),
  );
  assert.equal(s.cp.hellos.length, 1, 'a control plane that never pings is not judged by silence');
  // One Ping shows the control plane speaks within the TTL; then silence means a dead stream.
  s.cp.send({ body: { case: 'ping', value: { nonce: 1n } } });
  await waitFor(
    'a second Hello without any server restart',
    () => s.cp.hellos.length,
    (n) => n >= 2,
  );
  assert.equal(s.cp.hellos[1]?.agentInstanceId, s.agent.instanceId);
});
