import assert from 'node:assert/strict';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { agentv1 } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import pino from 'pino';
import { createMetrics } from '../metrics.js';
import { createSimRuntime, type SimRuntime } from '../runtime/index.js';
import { type BootProbe, portOpenBootProbe } from './boot-probe.js';
import { DesiredStore } from './desired-store.js';
import { Reconciler, type ReconcilerOptions } from './reconciler.js';
import { RecordingRuntime } from './testing.js';

const logger = pino({ level: 'silent' });
const RETRY_CAP_MS = 20;

interface Harness {
  dataDir: string;
  sim: SimRuntime;
  runtime: RecordingRuntime;
  reconciler: Reconciler;
  statuses: agentv1.ObservedDevice[];
  /** States reported for one device, in order. */
  states(deviceId: string): string[];
  last(deviceId: string): agentv1.ObservedDevice | undefined;
}

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.reconciler.close();
    await h.sim.close();
    await rm(h.dataDir, { recursive: true, force: true });
  }
});

async function harness(
  options: Partial<ReconcilerOptions> & { dataDir?: string; persist?: boolean } = {},
): Promise<Harness> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'cphone-reconciler-')));
  const sim = await createSimRuntime({ dataDir });
  const runtime = new RecordingRuntime(sim);
  const statuses: agentv1.ObservedDevice[] = [];
  const reconciler = new Reconciler({
    runtime,
    bootProbe: portOpenBootProbe(10),
    logger,
    onStatus: (d) => statuses.push(d),
    restartBaseMs: 5,
    restartCapMs: 20,
    retryBaseMs: 5,
    retryCapMs: RETRY_CAP_MS,
    resyncIntervalMs: 60_000,
    ...(options.persist === false ? {} : { store: new DesiredStore(dataDir) }),
    ...options,
  });
  await reconciler.start();
  const h: Harness = {
    dataDir,
    sim,
    runtime,
    reconciler,
    statuses,
    states: (id) => statuses.filter((s) => s.deviceId === id).map((s) => agentv1.DeviceState[s.state]),
    last: (id) => statuses.filter((s) => s.deviceId === id).at(-1),
  };
  open.push(h);
  return h;
}

interface DeviceFields {
  specRevision?: bigint;
  powerState?: agentv1.PowerState;
  restartPolicy?: agentv1.RestartPolicy;
  restartGeneration?: bigint;
  model?: string;
  spec?: MessageInitShape<typeof agentv1.DeviceSpecSchema>;
}

function device(deviceId: string, fields: DeviceFields = {}): agentv1.DesiredDevice {
  const { model, spec, ...rest } = fields;
  return create(agentv1.DesiredDeviceSchema, {
    deviceId,
    tenantId: 't-1',
    specRevision: 1n,
    powerState: agentv1.PowerState.RUNNING,
    restartPolicy: agentv1.RestartPolicy.ALWAYS,
    spec: create(
      agentv1.DeviceSpecSchema,
      spec ?? {
        imageRef: 'cphone/virtual-phone',
        vcpuMillicores: 2000,
        memoryMib: 2048,
        storageGib: 8,
        screen: { widthPx: 720, heightPx: 1280, dpi: 320, fps: 30 },
        gpuMode: agentv1.GpuMode.GUEST,
        properties: model === undefined ? {} : { 'ro.product.model': model },
      },
    ),
    ...rest,
  });
}

const full = (revision: bigint, ...devices: agentv1.DesiredDevice[]) =>
  create(agentv1.DesiredDevicesSchema, { revision, devices });
const upsert = (revision: bigint, d: agentv1.DesiredDevice) =>
  create(agentv1.DeviceUpsertSchema, { revision, device: d });
const remove = (revision: bigint, deviceId: string) =>
  create(agentv1.DeviceRemoveSchema, { revision, deviceId });

const stateOf = (h: Harness, id: string) => h.last(id)?.state;
/** The last state reported for each device, by name: what a wait shows when it times out. */
const statesOf = (h: Harness, ...ids: string[]) =>
  Object.fromEntries(ids.map((id) => [id, agentv1.DeviceState[stateOf(h, id) ?? 0]]));

test('a full set creates and starts phones, reports CREATING, BOOTING, RUNNING with the adb endpoint', async () => {
  const h = await harness();
  await h.reconciler.applyDesired(
    full(1n, device('d-run'), device('d-off', { powerState: agentv1.PowerState.STOPPED })),
  );
  await waitFor(
    'd-run RUNNING',
    () => stateOf(h, 'd-run'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  await waitFor(
    'd-off STOPPED',
    () => stateOf(h, 'd-off'),
    (v) => v === agentv1.DeviceState.STOPPED,
  );
  assert.deepEqual(h.states('d-run'), ['CREATING', 'BOOTING', 'RUNNING']);
  assert.deepEqual(h.states('d-off'), ['CREATING', 'STOPPED']);
  const running = h.last('d-run')!;
  const actual = await h.sim.inspect('d-run');
  assert.equal(actual?.state, 'running');
  assert.equal(running.adbEndpoint, `127.0.0.1:${actual?.adb?.port}`);
  assert.equal(running.containerId, actual?.runtimeId);
  assert.equal(running.specRevision, 1n);
  assert.equal((await h.sim.inspect('d-off'))?.state, 'created');
  assert.equal(h.reconciler.runningCount(), 1);
  assert.deepEqual(
    h.reconciler.metered().map((m) => [m.deviceId, m.vcpuMillicores, m.memoryMib, m.storageGib]),
    [['d-run', 2000, 2048, 8]],
  );
  // Converging again changes nothing and reports nothing.
  const before = h.statuses.length;
  await h.reconciler.applyDesired(
    full(2n, device('d-run'), device('d-off', { powerState: agentv1.PowerState.STOPPED })),
  );
  await h.reconciler.idle();
  assert.equal(h.statuses.length, before);
  assert.equal(h.runtime.count('create'), 2);
});

test('deltas apply in revision order; stale ones are ignored; remove deletes the phone and its data', async () => {
  const h = await harness();
  await h.reconciler.applyDesired(full(5n, device('d-1')));
  await waitFor(
    'd-1 RUNNING',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  assert.equal(await h.reconciler.applyUpsert(upsert(6n, device('d-2'))), true);
  await waitFor(
    'd-2 RUNNING',
    () => stateOf(h, 'd-2'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  // Stale: a revision not above the last applied changes nothing.
  assert.equal(
    await h.reconciler.applyUpsert(upsert(6n, device('d-2', { powerState: agentv1.PowerState.STOPPED }))),
    false,
  );
  assert.equal(await h.reconciler.applyRemove(remove(4n, 'd-1')), false);
  await h.reconciler.idle();
  assert.equal((await h.sim.inspect('d-2'))?.state, 'running');
  assert.equal((await h.sim.inspect('d-1'))?.state, 'running');
  assert.equal(h.reconciler.desiredRevision, 6n);

  await writeFile(join(h.sim.dataPath('d-1'), 'photo.jpg'), 'x');
  assert.equal(await h.reconciler.applyRemove(remove(7n, 'd-1')), true);
  await waitFor(
    'd-1 DELETED',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.DELETED,
  );
  assert.deepEqual(h.states('d-1').slice(-2), ['DELETING', 'DELETED']);
  assert.equal(h.last('d-1')?.containerId, '');
  assert.equal(await h.sim.inspect('d-1'), undefined);
  await assert.rejects(access(h.sim.dataPath('d-1')), 'data deleted with the device');
  assert.deepEqual(
    h.reconciler.inventory().map((d) => d.deviceId),
    ['d-2'],
  );
});

test('a device removed before anything of it was made is reported DELETED, so its deletion completes', async () => {
  const h = await harness({ concurrency: 1 });
  let release = () => {};
  h.runtime.holdCreate.set('d-slow', new Promise((resolve) => (release = resolve)));
  await h.reconciler.applyDesired(full(1n, device('d-slow')));
  await waitFor(
    'd-slow CREATING',
    () => stateOf(h, 'd-slow'),
    (v) => v === agentv1.DeviceState.CREATING,
  );
  // d-x waits behind d-slow in the one-slot queue while it is upserted and removed again.
  await h.reconciler.applyUpsert(upsert(2n, device('d-x')));
  await h.reconciler.applyRemove(remove(3n, 'd-x'));
  // And d-y leaves in a full set the same way.
  await h.reconciler.applyUpsert(upsert(4n, device('d-y')));
  await h.reconciler.applyDesired(full(5n, device('d-slow')));
  release();
  await waitFor(
    'd-x DELETED',
    () => stateOf(h, 'd-x'),
    (v) => v === agentv1.DeviceState.DELETED,
  );
  await waitFor(
    'd-y DELETED',
    () => stateOf(h, 'd-y'),
    (v) => v === agentv1.DeviceState.DELETED,
  );
  assert.deepEqual(h.states('d-x'), ['DELETED']);
  assert.equal(h.last('d-x')?.reason, 'NEVER_CREATED');
  assert.equal(h.runtime.count('create', 'd-x') + h.runtime.count('create', 'd-y'), 0);
  // An explicit remove is always answered, even of a device this agent never heard of.
  await h.reconciler.applyRemove(remove(6n, 'd-never-heard-of'));
  await waitFor(
    'd-never-heard-of DELETED',
    () => stateOf(h, 'd-never-heard-of'),
    (v) => v === agentv1.DeviceState.DELETED,
  );
});

test('a full set without a device removes it; a spec change recreates the phone keeping its data', async () => {
  const h = await harness();
  await h.reconciler.applyDesired(full(1n, device('d-keep'), device('d-gone')));
  await waitFor(
    'both RUNNING',
    () => statesOf(h, 'd-keep', 'd-gone'),
    (states) => Object.values(states).every((s) => s === 'RUNNING'),
  );
  await writeFile(join(h.sim.dataPath('d-keep'), 'notes.txt'), 'keep me');
  const firstContainer = h.last('d-keep')?.containerId;

  await h.reconciler.applyDesired(full(2n, device('d-keep', { specRevision: 2n, model: 'Pixel 8' })));
  await waitFor(
    'd-gone DELETED',
    () => stateOf(h, 'd-gone'),
    (v) => v === agentv1.DeviceState.DELETED,
  );
  await waitFor(
    'd-keep RUNNING at revision 2',
    () => h.last('d-keep'),
    (last) => last?.state === agentv1.DeviceState.RUNNING && last.specRevision === 2n,
  );
  assert.deepEqual(h.states('d-keep').slice(3), ['STOPPING', 'BOOTING', 'RUNNING']);
  const actual = await h.sim.inspect('d-keep');
  assert.equal(actual?.specRevision, 2);
  assert.notEqual(actual?.runtimeId, firstContainer, 'a new container');
  await access(join(h.sim.dataPath('d-keep'), 'notes.txt'));
  assert.equal(await h.sim.inspect('d-gone'), undefined);
});

test('power state and restart generation: stop, start again, hard restart', async () => {
  const h = await harness();
  await h.reconciler.applyDesired(full(1n, device('d-1')));
  await waitFor(
    'RUNNING',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  await h.reconciler.applyUpsert(upsert(2n, device('d-1', { powerState: agentv1.PowerState.STOPPED })));
  await waitFor(
    'STOPPED',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.STOPPED,
  );
  assert.equal((await h.sim.inspect('d-1'))?.state, 'exited');
  assert.deepEqual(h.states('d-1').slice(-2), ['STOPPING', 'STOPPED']);
  assert.equal(h.last('d-1')?.adbEndpoint, '');

  await h.reconciler.applyUpsert(upsert(3n, device('d-1')));
  await waitFor(
    'RUNNING again',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  const startedAt = (await h.sim.inspect('d-1'))?.startedAt?.getTime() ?? 0;
  // Start times have millisecond resolution: a restart within the same millisecond would look like none.
  await waitFor(
    'the clock past the first start',
    () => Date.now(),
    (now) => now > startedAt,
  );

  await h.reconciler.applyUpsert(upsert(4n, device('d-1', { restartGeneration: 1n })));
  await waitFor(
    'restarted',
    () => h.last('d-1'),
    (last) => last?.restartGeneration === 1n && last.state === agentv1.DeviceState.RUNNING,
  );
  const after = await h.sim.inspect('d-1');
  assert.equal(after?.state, 'running');
  assert.ok((after?.startedAt?.getTime() ?? 0) > startedAt, 'the container was started again');
  assert.equal(h.last('d-1')?.restartCount, 1);
  assert.equal(h.runtime.count('create'), 1, 'a restart keeps the container');
});

test('exits are handled by restart policy: ALWAYS and ON_FAILURE restart, NEVER and clean ON_FAILURE exits stay down', async () => {
  const h = await harness();
  await h.reconciler.applyDesired(
    full(
      1n,
      device('d-always'),
      device('d-onfail', { restartPolicy: agentv1.RestartPolicy.ON_FAILURE }),
      device('d-onfail-clean', { restartPolicy: agentv1.RestartPolicy.ON_FAILURE }),
      device('d-never', { restartPolicy: agentv1.RestartPolicy.NEVER }),
    ),
  );
  const ids = ['d-always', 'd-onfail', 'd-onfail-clean', 'd-never'];
  await waitFor(
    'all RUNNING',
    () => statesOf(h, ...ids),
    (states) => Object.values(states).every((s) => s === 'RUNNING'),
  );

  await h.runtime.crash('d-always', 0);
  await h.runtime.crash('d-onfail', 137);
  await h.runtime.crash('d-onfail-clean', 0);
  await h.runtime.crash('d-never', 1);

  await waitFor(
    'd-always restarted',
    () => h.last('d-always'),
    (last) => last?.restartCount === 1 && last.state === agentv1.DeviceState.RUNNING,
  );
  await waitFor(
    'd-onfail restarted',
    () => h.last('d-onfail'),
    (last) => last?.restartCount === 1 && last.state === agentv1.DeviceState.RUNNING,
  );
  await waitFor(
    'd-never ERROR',
    () => stateOf(h, 'd-never'),
    (v) => v === agentv1.DeviceState.ERROR,
  );
  await waitFor(
    'd-onfail-clean STOPPED',
    () => stateOf(h, 'd-onfail-clean'),
    (v) => v === agentv1.DeviceState.STOPPED,
  );
  await h.reconciler.idle();

  assert.deepEqual(h.states('d-always').slice(2), ['RUNNING', 'STOPPED', 'BOOTING', 'RUNNING']);
  assert.deepEqual(h.states('d-onfail').slice(2), ['RUNNING', 'ERROR', 'BOOTING', 'RUNNING']);
  assert.match(
    h.statuses.find((s) => s.deviceId === 'd-onfail' && s.state === agentv1.DeviceState.ERROR)?.message ?? '',
    /code 137/,
  );
  assert.equal(h.last('d-never')?.reason, 'EXITED');
  assert.equal(h.last('d-onfail-clean')?.reason, 'EXITED');
  assert.equal((await h.sim.inspect('d-never'))?.state, 'exited');
  assert.equal((await h.sim.inspect('d-onfail-clean'))?.state, 'exited');
  assert.equal(h.runtime.count('start', 'd-never'), 1);
  assert.equal(h.runtime.count('start', 'd-always'), 2);
});

test('a phone that keeps dying ends in ERROR CRASH_LOOP; a new instruction starts it again', async () => {
  const h = await harness({ maxRestarts: 2 });
  await h.reconciler.applyDesired(full(1n, device('d-1')));
  for (let run = 1; run <= 3; run++) {
    await waitFor(
      `run ${run} RUNNING`,
      () => ({ state: stateOf(h, 'd-1'), starts: h.runtime.count('start', 'd-1') }),
      (v) => v.state === agentv1.DeviceState.RUNNING && v.starts === run,
    );
    await h.runtime.crash('d-1', 139);
  }
  await waitFor(
    'CRASH_LOOP',
    () => h.last('d-1')?.reason,
    (v) => v === 'CRASH_LOOP',
  );
  assert.equal(stateOf(h, 'd-1'), agentv1.DeviceState.ERROR);
  await h.reconciler.idle();
  assert.equal(h.runtime.count('start', 'd-1'), 3, 'no restart after the crash loop was declared');

  await h.reconciler.applyUpsert(upsert(2n, device('d-1', { restartGeneration: 1n })));
  await waitFor(
    'RUNNING after the new generation',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  assert.equal(h.runtime.count('start', 'd-1'), 4);
});

test('a boot that never completes is a failed run: ON_FAILURE restarts it, NEVER leaves it in ERROR BOOT_TIMEOUT', async () => {
  const never: BootProbe = {
    waitForBoot: (_endpoint, signal) =>
      new Promise((_resolve, reject) =>
        signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
      ),
  };
  const h = await harness({ bootProbe: never, bootTimeoutMs: 50, maxRestarts: 1 });
  await h.reconciler.applyDesired(
    full(
      1n,
      device('d-never', { restartPolicy: agentv1.RestartPolicy.NEVER }),
      device('d-retry', { restartPolicy: agentv1.RestartPolicy.ON_FAILURE }),
    ),
  );
  await waitFor(
    'd-never ERROR',
    () => stateOf(h, 'd-never'),
    (v) => v === agentv1.DeviceState.ERROR,
  );
  assert.equal(h.last('d-never')?.reason, 'BOOT_TIMEOUT');
  assert.equal((await h.sim.inspect('d-never'))?.state, 'exited', 'a phone that could not boot is stopped');
  await waitFor(
    'd-retry CRASH_LOOP',
    () => h.last('d-retry')?.reason,
    (v) => v === 'CRASH_LOOP',
  );
  assert.equal(h.runtime.count('start', 'd-retry'), 2);
});

test('after an agent restart the phones are adopted: no duplicates, no orphans, nothing recreated', async () => {
  const first = await harness();
  await first.reconciler.applyDesired(
    full(3n, device('d-1'), device('d-2'), device('d-3', { powerState: agentv1.PowerState.STOPPED })),
  );
  await waitFor(
    'converged',
    () => statesOf(first, 'd-1', 'd-2', 'd-3'),
    (states) => states['d-1'] === 'RUNNING' && states['d-2'] === 'RUNNING' && states['d-3'] === 'STOPPED',
  );
  // The agent process goes away: the reconciler closes, the sim runtime keeps its records.
  open.splice(open.indexOf(first), 1);
  await first.reconciler.close();
  await first.sim.close();

  const second = await harness({ dataDir: first.dataDir });
  assert.equal(second.reconciler.desiredRevision, 3n, 'the desired set survived the restart');
  // Known at once, before any converge: Hello can carry it.
  const inventory = second.reconciler.inventory();
  assert.deepEqual(
    inventory.map((d) => d.deviceId),
    ['d-1', 'd-2', 'd-3'],
  );
  assert.equal(inventory[2]?.state, agentv1.DeviceState.STOPPED);
  assert.ok(
    inventory
      .slice(0, 2)
      .every((d) => d.state === agentv1.DeviceState.BOOTING || d.state === agentv1.DeviceState.RUNNING),
  );
  await waitFor(
    'adopted phones RUNNING',
    () => statesOf(second, 'd-1', 'd-2'),
    (states) => states['d-1'] === 'RUNNING' && states['d-2'] === 'RUNNING',
  );
  await second.reconciler.idle();
  assert.deepEqual(second.runtime.calls, [], 'adoption made no runtime changes');
  assert.deepEqual(
    (await second.sim.list()).map((d) => [d.deviceId, d.state]),
    [
      ['d-1', 'running'],
      ['d-2', 'running'],
      ['d-3', 'created'],
    ],
  );
  // The control plane's full set after reconnect: same devices, nothing changes.
  await second.reconciler.applyDesired(
    full(3n, device('d-1'), device('d-2'), device('d-3', { powerState: agentv1.PowerState.STOPPED })),
  );
  await second.reconciler.idle();
  assert.deepEqual(second.runtime.calls, []);
});

test('without any desired state yet, existing phones are only observed, never removed', async () => {
  const first = await harness({ persist: false });
  await first.reconciler.applyDesired(full(1n, device('d-1')));
  await waitFor(
    'RUNNING',
    () => stateOf(first, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  open.splice(open.indexOf(first), 1);
  await first.reconciler.close();
  await first.sim.close();

  const second = await harness({ dataDir: first.dataDir, persist: false });
  assert.equal(second.reconciler.desiredRevision, 0n);
  await waitFor(
    'observed RUNNING',
    () => stateOf(second, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  await second.reconciler.idle();
  assert.deepEqual(second.runtime.calls, []);
  assert.equal((await second.sim.inspect('d-1'))?.state, 'running');
});

test('a failed create is reported as ERROR with a reason and retried', async () => {
  const h = await harness();
  h.runtime.failCreate.set('d-1', new Error('engine hiccup'));
  await h.reconciler.applyDesired(full(1n, device('d-1')));
  await waitFor(
    'RUNNING after retry',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  assert.deepEqual(h.states('d-1'), ['CREATING', 'ERROR', 'BOOTING', 'RUNNING']);
  assert.equal(h.statuses.find((s) => s.state === agentv1.DeviceState.ERROR)?.reason, 'RUNTIME_ERROR');
  assert.equal(h.runtime.count('create', 'd-1'), 2);
});

test('an invalid spec is ERROR INVALID_SPEC and is not retried until the spec changes', async () => {
  const h = await harness();
  await h.reconciler.applyDesired(full(1n, device('d-1', { spec: { imageRef: 'x', vcpuMillicores: 0 } })));
  await waitFor(
    'ERROR',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.ERROR,
  );
  assert.equal(h.last('d-1')?.reason, 'INVALID_SPEC');
  assert.match(h.last('d-1')?.message ?? '', /vcpu_millicores/);
  // A retry would be set in the same turn as the ERROR report, at most RETRY_CAP_MS out: a timer set
  // now for longer fires after it, and idle() then waits out the converge it would have run.
  await new Promise((r) => setTimeout(r, RETRY_CAP_MS + 5));
  await h.reconciler.idle();
  assert.equal(h.runtime.count('create', 'd-1'), 0, 'the contract refuses it before the runtime is asked');
  assert.deepEqual(h.states('d-1'), ['CREATING', 'ERROR']);
  await h.reconciler.applyDesired(full(2n, device('d-1', { specRevision: 2n })));
  await waitFor(
    'RUNNING',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
});

test('a spec with a value this agent cannot map (a GpuMode it does not know) is INVALID_SPEC, not guessed', async () => {
  const h = await harness();
  const unknown = device('d-1');
  if (unknown.spec) unknown.spec.gpuMode = 7 as agentv1.GpuMode;
  await h.reconciler.applyDesired(full(1n, unknown));
  await waitFor(
    'ERROR',
    () => stateOf(h, 'd-1'),
    (v) => v === agentv1.DeviceState.ERROR,
  );
  assert.equal(h.last('d-1')?.reason, 'INVALID_SPEC');
  assert.match(h.last('d-1')?.message ?? '', /gpu_mode=7/);
});

test('a desired set saved by the previous agent version (its specs carry image_id) still loads', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-reconciler-'));
  await writeFile(
    join(dataDir, 'desired-devices.json'),
    JSON.stringify({
      revision: '4',
      devices: [
        {
          deviceId: 'd-old',
          tenantId: 't-1',
          spec: { imageId: 'android-14', imageRef: 'cphone/virtual-phone', vcpuMillicores: 1000 },
          specRevision: '1',
          powerState: 'POWER_STATE_STOPPED',
          restartPolicy: 'RESTART_POLICY_ON_FAILURE',
        },
      ],
    }),
  );
  const loaded = await new DesiredStore(dataDir).load();
  await rm(dataDir, { recursive: true, force: true });
  const [d] = loaded?.devices ?? [];
  assert.equal(loaded?.revision, 4n);
  assert.equal(d?.spec?.imageRef, 'cphone/virtual-phone');
  assert.equal(d?.powerState, agentv1.PowerState.STOPPED);
  assert.equal(d?.restartPolicy, agentv1.RestartPolicy.ON_FAILURE);
});

test('the devices gauge counts each device once, by its last state, through changes, deletion and adoption', async () => {
  const gauge = async (metrics: ReturnType<typeof createMetrics>) =>
    Object.fromEntries(
      (await metrics.devices.get()).values.filter((v) => v.value !== 0).map((v) => [v.labels.state, v.value]),
    );
  const metrics = createMetrics({ defaultMetrics: false });
  const first = await harness({ metrics });
  await first.reconciler.applyDesired(
    full(1n, device('d-1'), device('d-2'), device('d-3', { powerState: agentv1.PowerState.STOPPED })),
  );
  await waitFor(
    'converged',
    () => gauge(metrics),
    (byState) => byState.RUNNING === 2,
  );
  await first.reconciler.idle();
  assert.deepEqual(await gauge(metrics), { RUNNING: 2, STOPPED: 1 });
  await first.reconciler.applyRemove(remove(2n, 'd-1'));
  await waitFor(
    'd-1 DELETED',
    () => stateOf(first, 'd-1'),
    (v) => v === agentv1.DeviceState.DELETED,
  );
  await first.reconciler.idle();
  assert.deepEqual(await gauge(metrics), { RUNNING: 1, STOPPED: 1 }, 'a deleted device is no longer counted');

  open.splice(open.indexOf(first), 1);
  await first.reconciler.close();
  await first.sim.close();
  const again = createMetrics({ defaultMetrics: false });
  const second = await harness({ dataDir: first.dataDir, metrics: again });
  await waitFor(
    'adopted d-2 RUNNING',
    () => stateOf(second, 'd-2'),
    (v) => v === agentv1.DeviceState.RUNNING,
  );
  await second.reconciler.idle();
  assert.deepEqual(await gauge(again), { RUNNING: 1, STOPPED: 1 }, 'adopted devices are counted once');
});
