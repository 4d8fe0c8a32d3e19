import * as assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import type { VirtualPhone } from '../virtual-phone/index.js';
import { runtimeContract } from './contract.js';
import { androidFromImage, launchVirtualPhone, type PhoneLauncher } from './sim-launcher.js';
import { createSimRuntime, type SimRuntime } from './sim-runtime.js';
import type { DeviceSpec } from './types.js';

runtimeContract('sim', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-sim-'));
  let current: SimRuntime | undefined;
  const dataFile = (deviceId: string, name: string) => join(current!.dataPath(deviceId), name);
  return {
    image: 'cphone/virtual-phone',
    idPrefix: 'sim-contract-',
    speaksAdb: true,
    async open() {
      current = await createSimRuntime({ dataDir });
      return current;
    },
    async writeData(deviceId, name, content) {
      await writeFile(dataFile(deviceId, name), content);
    },
    async readData(deviceId, name) {
      return readFile(dataFile(deviceId, name), 'utf8').catch(() => undefined);
    },
    async dataExists(deviceId) {
      return access(current!.dataPath(deviceId)).then(
        () => true,
        () => false,
      );
    },
    async cleanup() {
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});

describe('sim phones keep their data like a /data volume', () => {
  const apkPath = new URL('../../fixtures/test-app.apk', import.meta.url).pathname;
  let dataDir: string;
  let runtime: SimRuntime;
  const phones = new Map<string, VirtualPhone>();
  // The default launcher, keeping each phone so the test can reach its package manager and files.
  const launch: PhoneLauncher = async (options) => {
    const phone = await launchVirtualPhone(options);
    phones.set(options.serial, phone);
    return phone;
  };
  const phoneOf = (deviceId: string): VirtualPhone => {
    const found = phones.get(deviceId);
    assert.ok(found, `no phone launched for ${deviceId}`);
    return found;
  };
  const spec = (deviceId: string, specRevision = 1): DeviceSpec => ({
    deviceId,
    tenantId: 'tenant-sim',
    specRevision,
    image: 'cphone/virtual-phone',
    vcpuMillicores: 500,
    memoryMib: 256,
    storageGib: 1,
    screen: { width: 720, height: 1280, dpi: 320, fps: 30 },
    gpuMode: 'guest',
    properties: {},
    labels: {},
  });
  const packagesOf = (deviceId: string) =>
    phoneOf(deviceId)
      .installedPackages()
      .map((p) => p.packageName);
  const noteOf = (deviceId: string) => {
    const entry = phoneOf(deviceId).device.fs.stat('/sdcard/note.txt');
    return entry?.type === 'file' ? Buffer.from(entry.data).toString('utf8') : undefined;
  };

  /** A running phone with the test app installed through its pm and a file on /sdcard. */
  async function startWithData(deviceId: string): Promise<void> {
    await runtime.create(spec(deviceId));
    await runtime.start(deviceId);
    const { device } = phoneOf(deviceId);
    await device.packages.install(await readFile(apkPath));
    device.fs.write('/sdcard/note.txt', new TextEncoder().encode('kept'));
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cphone-sim-data-'));
    runtime = await createSimRuntime({ dataDir, launch });
  });
  after(async () => {
    await runtime?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('stop then start keeps installed apps and files', async () => {
    await startWithData('keep');
    await runtime.stop('keep', { timeoutMs: 1000 });
    await runtime.start('keep');
    assert.deepEqual(packagesOf('keep'), ['dev.cphone.testapp']);
    assert.equal(noteOf('keep'), 'kept');
  });

  it('remove with keepData then create keeps them; without keepData they are gone', async () => {
    await runtime.remove('keep', { keepData: true });
    await runtime.create(spec('keep', 2));
    await runtime.start('keep');
    assert.deepEqual(packagesOf('keep'), ['dev.cphone.testapp']);
    assert.equal(noteOf('keep'), 'kept');

    await runtime.remove('keep', { keepData: false });
    await runtime.create(spec('keep', 3));
    await runtime.start('keep');
    assert.deepEqual(packagesOf('keep'), []);
    assert.equal(noteOf('keep'), undefined);
  });
});

test('a sim phone reports the Android of its Redroid image, as a Redroid phone does', () => {
  assert.deepEqual(androidFromImage('redroid/redroid:14.0.0_64only-latest'), { release: '14', sdk: 34 });
  assert.deepEqual(androidFromImage('registry.example/redroid/redroid:12.0.0-latest'), {
    release: '12',
    sdk: 31,
  });
  assert.deepEqual(androidFromImage('redroid/redroid:11.0.0'), { release: '11', sdk: 30 });
  assert.equal(androidFromImage('cphone/virtual-phone'), undefined);
  assert.equal(androidFromImage('redroid/redroid:latest'), undefined);
});
