// Fault tests of the real agent against the real control plane: an agent killed mid-create, a
// control-plane restart, exactly-once usage across both, and an agent gone past the heartbeat TTL
// and the lost grace. The tests run in order on one control plane, one host and one agent data dir.
// The TTL and the grace are crossed by moving the control plane's clock, never by waiting.
//
// The agent gets a sim runtime owned by the test so the runtime's own view (phones, runtime ids)
// can be read; "killing" the agent closes the agent and then that runtime, which is what the exit
// of an agent process does to virtual phones (they are recorded and started again on the next open).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Agent, createSimRuntime, type SimRuntime } from '@cphone/host-agent';
import { DeviceState, HostState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { type Harness, startHarness } from './harness.js';

const BOOT_DELAY_MS = 2000;
const TTL_MS = 30_000;
const GRACE_MS = 30_000;
const repoRoot = new URL('../../', import.meta.url).pathname;
let h: Harness;
let agent: Agent | undefined;
let runtime: SimRuntime | undefined;
/** The phone created by the first test; later tests keep it running. */
let phoneId = '';
/** Every phone this file created. */
const created = new Set<string>();

async function startSimAgent(): Promise<Agent> {
  runtime = await createSimRuntime({
    dataDir: join(h.agentDataDir, 'sim'),
    bootDelayMs: BOOT_DELAY_MS,
    scope: `e2e-${h.hostId}`,
  });
  agent = await h.startAgent({
    env: { CPHONE_USAGE_INTERVAL_MS: '200', CPHONE_SIM_BOOT_DELAY_MS: String(BOOT_DELAY_MS) },
    deps: { runtime },
  });
  return agent;
}

/** What an agent process exit does: the session, the agent's resources, then the in-process phones. */
async function killAgent(): Promise<void> {
  await agent?.close();
  await runtime?.close();
  agent = undefined;
  runtime = undefined;
}

async function runtimePhones() {
  assert.ok(runtime, 'an agent runs');
  return (await runtime.list()).map((d) => ({
    deviceId: d.deviceId,
    runtimeId: d.runtimeId,
    state: d.state,
  }));
}

async function events(deviceId: string): Promise<string[]> {
  const { deviceEvents } = await h.devices.listDeviceEvents({ deviceId, pageSize: 200 });
  return deviceEvents.map((e) => DeviceState[e.toState] ?? String(e.toState)).reverse();
}

async function liveDevices(): Promise<string[]> {
  const { devices } = await h.devices.listDevices({ tenantId: h.tenantId, pageSize: 100 });
  return devices.filter((d) => d.state !== DeviceState.DELETED).map((d) => d.deviceId);
}

before(async () => {
  h = await startHarness({ heartbeatIntervalMs: 250, heartbeatTtlMs: TTL_MS, lostGraceMs: GRACE_MS });
});

after(async () => {
  await killAgent();
  await h?.close();
});

test('an agent process killed (SIGKILL) mid-create and started again brings the phone up once', async () => {
  // A real daemon process, killed without any chance to clean up while its phone is booting.
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'host-agent/src/main.ts')], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...h.agentEnv({ CPHONE_USAGE_INTERVAL_MS: '200', CPHONE_SIM_BOOT_DELAY_MS: '60000' }),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  try {
    // A fresh process compiles the agent with tsx before it dials: slow on a loaded machine.
    await h.waitForHost(HostState.READY, true, 60_000);
    phoneId = (await h.createPhone('fault-create')).deviceId;
    created.add(phoneId);
    await waitFor(
      'the phone to be creating or booting',
      () => h.device(phoneId).then((d) => DeviceState[d.state]),
      (s) => s === 'CREATING' || s === 'BOOTING',
    );
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  assert.equal(child.signalCode, 'SIGKILL', stderr);
  assert.notEqual((await h.device(phoneId)).state, DeviceState.RUNNING);

  await startSimAgent();
  await h.waitForState(phoneId, DeviceState.RUNNING, 20_000);
  const phones = await runtimePhones();
  assert.deepEqual(
    phones.map((p) => [p.deviceId, p.state]),
    [[phoneId, 'running']],
    'exactly one phone in the runtime',
  );
  assert.deepEqual(await liveDevices(), [phoneId]);
  const shell = await h.devices.execShell({ deviceId: phoneId, command: 'getprop sys.boot_completed' });
  assert.equal(Buffer.from(shell.stdout).toString().trim(), '1');
});

test('an agent closed while its phone boots and started again brings the phone up once', async () => {
  const second = await h.createPhone('fault-close');
  created.add(second.deviceId);
  await waitFor(
    'the phone to be creating or booting',
    () => h.device(second.deviceId).then((d) => DeviceState[d.state]),
    (s) => s === 'CREATING' || s === 'BOOTING',
  );
  await killAgent();
  await startSimAgent();
  await h.waitForState(second.deviceId, DeviceState.RUNNING, 20_000);
  assert.deepEqual(
    (await runtimePhones()).map((p) => p.deviceId).sort(),
    [phoneId, second.deviceId].sort(),
    'one phone each in the runtime',
  );
  // The rest of the file works with one phone.
  await h.devices.deleteDevice({ deviceId: second.deviceId });
  await h.waitForState(second.deviceId, DeviceState.DELETED);
  assert.deepEqual(
    (await runtimePhones()).map((p) => p.deviceId),
    [phoneId],
  );
});

test('a control-plane restart leaves phones running and the agent reconnects by itself', async () => {
  assert.ok(agent);
  await h.waitForState(phoneId, DeviceState.RUNNING);
  const before = await runtimePhones();
  const eventsBefore = await events(phoneId);
  const allocatedBefore = (await h.hosts.getHost({ hostId: h.hostId })).host?.allocated;

  // An outage longer than the TTL and the grace together: the restarted control plane counts the TTL
  // from its own start, so its liveness passes take nothing from hosts whose agents are on their way.
  await h.stopPlane();
  const restartedAt = h.clock.advance(TTL_MS + GRACE_MS).getTime();
  await h.startPlane();
  const host = await h.waitForHost(HostState.READY, true, 20_000);
  await h.checkLiveness();
  // A heartbeat after the restart proves the new control plane hears this agent.
  await waitFor(
    'a heartbeat on the restarted control plane',
    async () => (await h.hosts.getHost({ hostId: h.hostId })).host?.lastHeartbeatTime,
    (t) => t !== undefined && Number(t.seconds) * 1000 + t.nanos / 1e6 >= restartedAt,
  );
  assert.ok(agent.session.connected, 'the same agent is connected again');

  assert.deepEqual(await runtimePhones(), before, 'same phones, same runtime ids, still running');
  assert.equal((await h.device(phoneId)).state, DeviceState.RUNNING);
  const eventsAfter = await events(phoneId);
  assert.ok(!eventsAfter.includes('LOST'), `events ${eventsAfter.join(' -> ')}`);
  assert.deepEqual(eventsAfter, eventsBefore, 'a restart is not a device event');
  assert.deepEqual(await liveDevices(), [phoneId]);
  assert.deepEqual(host.allocated, allocatedBefore);
  const shell = await h.devices.execShell({ deviceId: phoneId, command: 'echo ok' });
  assert.equal(Buffer.from(shell.stdout).toString().trim(), 'ok');
});

test('usage is metered exactly once across a control-plane restart and an agent restart', async () => {
  const grow = async (by: number) => {
    const from = agent?.spool.lastSequence ?? 0;
    await waitFor(
      `${by} more usage samples`,
      () => agent?.spool.lastSequence ?? 0,
      (n) => n >= from + by,
    );
  };
  await grow(3);
  await h.restartPlane();
  await grow(3);
  await h.waitForHost(HostState.READY, true, 20_000);
  await killAgent();
  await startSimAgent();
  await h.waitForState(phoneId, DeviceState.RUNNING, 20_000);
  await grow(3);

  // Freeze the sequence, then everything spooled must be acknowledged and stored exactly once.
  const live = agent;
  assert.ok(live);
  await live.sampler.stop();
  const last = live.spool.lastSequence;
  await waitFor(
    'the spool to be fully acknowledged',
    () => ({ pending: live.spool.pendingCount, acked: live.spool.ackedSequence }),
    (s) => s.pending === 0 && s.acked === last,
  );
  const rows = await h.plane.deps.db
    .selectFrom('usage_sample')
    .select(['sequence', 'device_id'])
    .where('host_id', '=', h.hostId)
    .orderBy('sequence')
    .execute();
  assert.equal(rows.length, last, `${rows.length} rows for ${last} samples`);
  assert.deepEqual(
    rows.map((r) => Number(r.sequence)),
    Array.from({ length: last }, (_, i) => i + 1),
    'sequences 1..N, no gaps, no duplicates',
  );
  const metered = new Set(rows.map((r) => r.device_id));
  assert.ok(metered.has(phoneId), 'the running phone is metered');
  assert.ok(
    [...metered].every((id) => created.has(id)),
    `metered ${[...metered].join(', ')}`,
  );
});

test('an agent gone past the TTL makes its host unreachable and phones lost; its return heals both', async () => {
  await killAgent();
  // The stream is gone, so nothing the agent sent can still be recorded as a later heartbeat.
  await h.waitForHost(HostState.UNREACHABLE, false, 20_000);
  const connection = async () =>
    (
      await h.plane.deps.db
        .selectFrom('host')
        .select('connection')
        .where('id', '=', h.hostId)
        .executeTakeFirstOrThrow()
    ).connection;
  assert.equal(await connection(), 'ready', 'its last heartbeat is within the TTL');
  h.clock.advance(TTL_MS + 1);
  await h.checkLiveness();
  assert.equal(await connection(), 'unreachable', 'silent past the TTL');
  assert.notEqual(DeviceState[(await h.device(phoneId)).state], 'LOST', 'not lost within the grace');
  h.clock.advance(GRACE_MS + 1);
  await h.checkLiveness();
  const lost = await h.device(phoneId);
  assert.equal(DeviceState[lost.state], 'LOST');
  assert.equal(lost.stateReason, 'HOST_UNREACHABLE');

  await startSimAgent();
  await h.waitForHost(HostState.READY, true, 20_000);
  await h.waitForState(phoneId, DeviceState.RUNNING, 20_000);
  const path = await events(phoneId);
  assert.equal(path.filter((s) => s === 'LOST').length, 1, `events ${path.join(' -> ')}`);
  assert.equal(path.at(-1), 'RUNNING');
  assert.deepEqual(
    (await runtimePhones()).map((p) => [p.deviceId, p.state]),
    [[phoneId, 'running']],
  );
  assert.deepEqual(await liveDevices(), [phoneId]);
});
