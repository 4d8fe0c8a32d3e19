// The behaviour every ContainerRuntime owes the agent, as one suite that each implementation's
// test file runs against its own runtime (docker.test.ts over podman, sim.test.ts in-process).
import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '@cphone/proto/testing';
import type { ContainerRuntime } from './container-runtime.js';
import { DeviceNotFoundError, InvalidSpecError, SpecRevisionConflictError } from './errors.js';
import { LABEL_DEVICE_ID, LABEL_MANAGED, LABEL_SPEC_REVISION, LABEL_TENANT_ID } from './labels.js';
import type { AdbEndpoint, DeviceSpec, RuntimeDevice, RuntimeEvent, RuntimeEventType } from './types.js';

export interface RuntimeHarness {
  /** A new runtime instance over the same host state, as after an agent restart. */
  open(): Promise<ContainerRuntime>;
  /** Image reference the specs use. */
  readonly image: string;
  /** Unique per run, so parallel runs and leftovers never collide. */
  readonly idPrefix: string;
  /** Whether the phones answer the ADB handshake (else only the TCP port is checked). */
  readonly speaksAdb: boolean;
  /** Writes a file into the phone's /data; the phone is running. */
  writeData(deviceId: string, name: string, content: string): Promise<void>;
  /** Reads a file from the phone's /data (undefined if absent); the phone is running. */
  readData(deviceId: string, name: string): Promise<string | undefined>;
  /** Whether the phone's data (volume) exists on the host, whatever the phone's state. */
  dataExists(deviceId: string): Promise<boolean>;
  /** Removes everything the run made, whatever the tests left. */
  cleanup(): Promise<void>;
}

const READY_TIMEOUT_MS = 20_000;

export function contractSpec(
  harness: RuntimeHarness,
  name: string,
  overrides: Partial<DeviceSpec> = {},
): DeviceSpec {
  return {
    deviceId: `${harness.idPrefix}${name}`,
    tenantId: 'tenant-contract',
    specRevision: 1,
    image: harness.image,
    vcpuMillicores: 500,
    memoryMib: 256,
    storageGib: 1,
    screen: { width: 720, height: 1280, dpi: 320, fps: 30 },
    gpuMode: 'guest',
    properties: { 'ro.product.model': 'cphone contract' },
    labels: { 'test.cphone/suite': 'contract' },
    ...overrides,
  };
}

/**
 * Sends an ADB CNXN and reads the answer's header and banner. A phone answers CNXN with a
 * `device::` banner; anything that merely echoes (the stand-in's fallback listener) returns ours.
 */
export function adbHandshake(endpoint: AdbEndpoint, timeoutMs = 3000): Promise<string> {
  const banner = Buffer.from('host::features=shell_v2,cmd\0');
  const header = Buffer.alloc(24);
  const CNXN = 0x4e584e43;
  header.writeUInt32LE(CNXN, 0);
  header.writeUInt32LE(0x01000001, 4);
  header.writeUInt32LE(256 * 1024, 8);
  header.writeUInt32LE(banner.length, 12);
  header.writeUInt32LE(
    banner.reduce((sum, b) => sum + b, 0),
    16,
  );
  header.writeUInt32LE(~CNXN >>> 0, 20);
  return new Promise((resolve, reject) => {
    const socket = connect(endpoint.port, endpoint.host);
    let received = Buffer.alloc(0);
    const timer = setTimeout(
      () => socket.destroy(new Error(`no ADB answer from ${endpoint.host}:${endpoint.port}`)),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(Buffer.concat([header, banner])));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 24) return;
      const length = received.readUInt32LE(12);
      if (received.readUInt32LE(0) !== CNXN) {
        socket.destroy(new Error(`first packet is 0x${received.readUInt32LE(0).toString(16)}, not CNXN`));
      } else if (received.length >= 24 + length) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received.subarray(24, 24 + length).toString('utf8'));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function tcpAnswers(endpoint: AdbEndpoint): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(endpoint.port, endpoint.host, () => {
      socket.destroy();
      resolve();
    });
    socket.setTimeout(2000, () => socket.destroy(new Error('connect timeout')));
    socket.on('error', reject);
  });
}

/** Until something accepts TCP connections at the endpoint (a container's phone takes a moment to listen). */
export async function waitForTcp(endpoint: AdbEndpoint, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  await waitFor(
    `something to listen at ${endpoint.host}:${endpoint.port}`,
    () => tcpAnswers(endpoint).then(() => true),
    Boolean,
    { timeoutMs, intervalMs: 200 },
  );
}

/** Until the phone's adbd answers (boot takes a while for containers), or fail naming the last error. */
async function waitForAdb(harness: RuntimeHarness, endpoint: AdbEndpoint): Promise<void> {
  if (!harness.speaksAdb) return waitForTcp(endpoint);
  // The stand-in's fallback listener echoes our own banner back until the phone's adbd is up.
  await waitFor(
    `adbd at ${endpoint.host}:${endpoint.port} to answer with a device banner`,
    () => adbHandshake(endpoint),
    (banner) => banner.startsWith('device:'),
    { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200 },
  );
}

async function mustInspect(runtime: ContainerRuntime, deviceId: string): Promise<RuntimeDevice> {
  const device = await runtime.inspect(deviceId);
  assert.ok(device, `inspect(${deviceId}) found nothing`);
  return device;
}

function adbOf(device: RuntimeDevice): AdbEndpoint {
  assert.ok(device.adb, `${device.deviceId} (${device.state}) has no ADB endpoint`);
  return device.adb;
}

/** Collects events from the moment it is made; `waitFor` resolves once the wanted one arrived. */
function recordEvents(runtime: ContainerRuntime) {
  const controller = new AbortController();
  const seen: RuntimeEvent[] = [];
  const waiters = new Set<() => void>();
  const done = (async () => {
    for await (const event of runtime.events(controller.signal)) {
      seen.push(event);
      for (const w of waiters) w();
    }
  })();
  return {
    seen,
    async waitFor(type: RuntimeEventType, deviceId: string, timeoutMs = 10_000): Promise<RuntimeEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = seen.find((e) => e.type === type && e.deviceId === deviceId);
        if (hit) return hit;
        const left = deadline - Date.now();
        if (left <= 0) {
          assert.fail(
            `no ${type} event for ${deviceId}; saw ${JSON.stringify(seen.map((e) => [e.type, e.deviceId]))}`,
          );
        }
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, left);
          waiters.add(wake);
        });
      }
    },
    async close(): Promise<void> {
      controller.abort();
      await done;
    },
  };
}

export function runtimeContract(name: string, makeHarness: () => Promise<RuntimeHarness>): void {
  describe(`ContainerRuntime contract: ${name}`, () => {
    let harness: RuntimeHarness;
    let runtime: ContainerRuntime;
    let events: ReturnType<typeof recordEvents>;
    let a: DeviceSpec;
    let b: DeviceSpec;

    before(async () => {
      harness = await makeHarness();
      runtime = await harness.open();
      events = recordEvents(runtime);
      a = contractSpec(harness, 'a');
      b = contractSpec(harness, 'b');
    });

    after(async () => {
      await events?.close();
      await runtime?.close();
      await harness?.cleanup();
    });

    it('rejects an invalid spec naming the field', async () => {
      await assert.rejects(runtime.create({ ...a, memoryMib: 0 }), (err: unknown) => {
        assert.ok(err instanceof InvalidSpecError, String(err));
        assert.equal(err.field, 'memory_mib');
        return true;
      });
      assert.equal(await runtime.inspect(a.deviceId), undefined);
    });

    it('creates a phone, stopped, with its identity and labels', async () => {
      const device = await runtime.create(a);
      assert.equal(device.state, 'created');
      assert.equal(device.deviceId, a.deviceId);
      assert.equal(device.tenantId, a.tenantId);
      assert.equal(device.specRevision, 1);
      assert.equal(device.adb, undefined);
      assert.equal(device.labels[LABEL_MANAGED], 'true');
      assert.equal(device.labels[LABEL_DEVICE_ID], a.deviceId);
      assert.equal(device.labels[LABEL_TENANT_ID], a.tenantId);
      assert.equal(device.labels[LABEL_SPEC_REVISION], '1');
      assert.equal(device.labels['test.cphone/suite'], 'contract');
      assert.deepEqual(await runtime.inspect(a.deviceId), device);
    });

    it('create is idempotent for the same revision and refuses another revision', async () => {
      const first = await runtime.inspect(a.deviceId);
      const again = await runtime.create(a);
      assert.equal(again.runtimeId, first?.runtimeId);
      await assert.rejects(runtime.create({ ...a, specRevision: 2 }), (err: unknown) => {
        assert.ok(err instanceof SpecRevisionConflictError, String(err));
        assert.equal(err.existingRevision, 1);
        assert.equal(err.requestedRevision, 2);
        return true;
      });
      assert.equal((await runtime.list()).filter((d) => d.deviceId === a.deviceId).length, 1);
    });

    it('starts the phone: running, with an ADB endpoint that answers, and a start event', async () => {
      await runtime.start(a.deviceId);
      await runtime.start(a.deviceId); // already running: no-op
      const device = await mustInspect(runtime, a.deviceId);
      assert.equal(device.state, 'running');
      assert.ok(device.startedAt instanceof Date);
      await waitForAdb(harness, adbOf(device));
      await events.waitFor('start', a.deviceId);
    });

    it('stop keeps the data; a restart runs the phone again with its data', async () => {
      await harness.writeData(a.deviceId, 'marker', 'kept across restarts');
      await runtime.stop(a.deviceId, { timeoutMs: 5000 });
      const stopped = await mustInspect(runtime, a.deviceId);
      assert.equal(stopped.state, 'exited');
      // PID 1 handles SIGTERM itself (no init in front of it): it exits 0, not killed at the timeout.
      assert.equal(stopped.exitCode, 0);
      assert.ok(stopped.finishedAt instanceof Date);
      assert.equal(stopped.adb, undefined);
      assert.equal(await harness.dataExists(a.deviceId), true);
      await events.waitFor('die', a.deviceId);
      await runtime.stop(a.deviceId, { timeoutMs: 5000 }); // already stopped: no-op

      await runtime.start(a.deviceId);
      const restarted = await mustInspect(runtime, a.deviceId);
      assert.equal(restarted.state, 'running');
      await waitForAdb(harness, adbOf(restarted));
      assert.equal(await harness.readData(a.deviceId, 'marker'), 'kept across restarts');
    });

    it('concurrent creates of one device make one phone', async () => {
      const [first, second] = await Promise.all([runtime.create(b), runtime.create(b)]);
      assert.equal(first.runtimeId, second.runtimeId);
      assert.equal((await runtime.list()).filter((d) => d.deviceId === b.deviceId).length, 1);
    });

    it('a fresh runtime instance lists exactly the managed phones, once each', async () => {
      await events.close();
      await runtime.close();
      runtime = await harness.open();
      events = recordEvents(runtime);
      const mine = (await runtime.list()).filter((d) => d.deviceId.startsWith(harness.idPrefix));
      assert.deepEqual(
        mine.map((d) => [d.deviceId, d.state]),
        [
          [a.deviceId, 'running'],
          [b.deviceId, 'created'],
        ],
      );
      const adopted = await runtime.create(a); // the reconciler's create after a restart adopts
      assert.equal(adopted.runtimeId, mine[0]?.runtimeId);
      await waitForAdb(harness, adbOf(adopted));
    });

    it('remove with keepData keeps the data for the next create of the device', async () => {
      await runtime.remove(a.deviceId, { keepData: true });
      assert.equal(await runtime.inspect(a.deviceId), undefined);
      assert.equal(await harness.dataExists(a.deviceId), true);
      const next = await runtime.create({ ...a, specRevision: 2 });
      assert.equal(next.specRevision, 2);
      await runtime.start(a.deviceId);
      await waitForAdb(harness, adbOf(await mustInspect(runtime, a.deviceId)));
      assert.equal(await harness.readData(a.deviceId, 'marker'), 'kept across restarts');
    });

    it('remove deletes the phone and its data, reports it, and forgets it', async () => {
      await runtime.remove(a.deviceId, { keepData: false });
      await runtime.remove(b.deviceId, { keepData: false });
      assert.equal(await runtime.inspect(a.deviceId), undefined);
      assert.equal(await harness.dataExists(a.deviceId), false);
      assert.equal(await harness.dataExists(b.deviceId), false);
      await events.waitFor('remove', a.deviceId);
      const left = (await runtime.list()).filter((d) => d.deviceId.startsWith(harness.idPrefix));
      assert.deepEqual(left, []);
    });

    it('an events iterable ends when its signal aborts', async () => {
      const controller = new AbortController();
      const iterator = runtime.events(controller.signal)[Symbol.asyncIterator]();
      const next = iterator.next();
      controller.abort();
      assert.deepEqual(await next, { done: true, value: undefined });
    });

    it('unknown devices: remove is a no-op, start/stop throw DeviceNotFoundError', async () => {
      const ghost = `${harness.idPrefix}ghost`;
      await runtime.remove(ghost, { keepData: false });
      assert.equal(await runtime.inspect(ghost), undefined);
      await assert.rejects(runtime.start(ghost), DeviceNotFoundError);
      await assert.rejects(runtime.stop(ghost, { timeoutMs: 1000 }), DeviceNotFoundError);
    });
  });
}
