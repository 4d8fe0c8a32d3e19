// DrainHost MIGRATE with two real agents (sim runtime) on the real control plane: a phone running
// on host A is stopped there, re-placed on host B, created and booted by B's agent, and removed
// (with its data) from A's runtime.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSimRuntime, type SimRuntime } from '@cphone/host-agent';
import { DeviceState, DrainMode, DrainState, HostState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { type Harness, startHarness } from './harness.js';

const BOOT_DELAY_MS = 300;
let h: Harness;
let dirB: string;
const runtimes: SimRuntime[] = [];

before(async () => {
  h = await startHarness();
  dirB = await mkdtemp(join(tmpdir(), 'cphone-e2e-agent-b-'));
});

after(async () => {
  await h?.close();
  for (const runtime of runtimes) await runtime.close().catch(() => undefined);
  await rm(dirB, { recursive: true, force: true });
});

async function simRuntime(dataDir: string, hostId: string): Promise<SimRuntime> {
  const runtime = await createSimRuntime({
    dataDir: join(dataDir, 'sim'),
    bootDelayMs: BOOT_DELAY_MS,
    scope: `e2e-${hostId}`,
  });
  runtimes.push(runtime);
  return runtime;
}

test('a running phone moves to the other host and leaves nothing behind on the drained one', async () => {
  const runtimeA = await simRuntime(h.agentDataDir, h.hostId);
  await h.startAgent({
    env: { CPHONE_SIM_BOOT_DELAY_MS: String(BOOT_DELAY_MS) },
    deps: { runtime: runtimeA },
  });
  await h.waitForHost(HostState.READY, true);
  const phone = await h.createPhone('mover');
  assert.equal(phone.hostId, h.hostId);
  await h.waitForState(phone.deviceId, DeviceState.RUNNING);
  assert.deepEqual(
    (await runtimeA.list()).map((d) => d.deviceId),
    [phone.deviceId],
  );

  // Host B joins only now, so the phone was placed on A.
  const enrolled = await h.hosts.enrollHost({ name: 'e2e-host-b', arch: 'arm64', labels: { pool: 'e2e' } });
  const hostB = enrolled.host?.hostId ?? '';
  const runtimeB = await simRuntime(dirB, hostB);
  await h.startAgent({
    env: {
      CPHONE_HOST_ID: hostB,
      CPHONE_HOST_CREDENTIAL: enrolled.credential,
      CPHONE_AGENT_DATA_DIR: dirB,
      CPHONE_RUNTIME_SCOPE: `e2e-${hostB}`,
      CPHONE_SIM_BOOT_DELAY_MS: String(BOOT_DELAY_MS),
    },
    deps: { runtime: runtimeB },
  });
  await waitFor(
    'host B ready',
    async () => (await h.hosts.getHost({ hostId: hostB })).host,
    (host) => host?.state === HostState.READY && host.connected,
  );

  const drain = await h.hosts.drainHost({ hostId: h.hostId, mode: DrainMode.MIGRATE, reason: 'e2e' });
  assert.equal(drain.drainStatus?.devicesTotal, 1);
  const moved = await waitFor(
    'the phone running on host B',
    () => h.device(phone.deviceId),
    (d) => d.hostId === hostB && d.state === DeviceState.RUNNING,
    { timeoutMs: 20_000 },
  );
  assert.notEqual(moved.adbEndpoint, '', 'B reports its own adb endpoint');
  const shell = await h.devices.execShell({ deviceId: phone.deviceId, command: 'getprop ro.product.model' });
  assert.equal(shell.exitCode, 0, 'commands now go to host B');

  await waitFor(
    'host A runtime empty',
    () => runtimeA.list(),
    (list) => list.length === 0,
  );
  assert.deepEqual(
    (await runtimeB.list()).map((d) => [d.deviceId, d.state]),
    [[phone.deviceId, 'running']],
  );
  const status = await waitFor(
    'drain completed',
    async () => (await h.hosts.getDrainStatus({ hostId: h.hostId })).drainStatus,
    (s) => s?.state === DrainState.COMPLETED,
  );
  assert.equal(status?.devicesMigrated, 1);
  assert.equal(status?.devicesRemaining, 0);
  const hostA = (await h.hosts.getHost({ hostId: h.hostId })).host;
  assert.equal(hostA?.allocated?.devices, 0);
  const b = (await h.hosts.getHost({ hostId: hostB })).host;
  assert.equal(b?.allocated?.devices, 1);
  const { deviceEvents } = await h.devices.listDeviceEvents({ deviceId: phone.deviceId, pageSize: 100 });
  assert.ok(
    deviceEvents.some((e) => e.reason === 'MIGRATED' && e.toState === DeviceState.SCHEDULED),
    'the move is recorded',
  );
});
