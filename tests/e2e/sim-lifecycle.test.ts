// A phone's whole life through the public API, run by a real host agent (sim runtime) connected to a
// real control plane over gRPC/TLS: create, boot, shell, install an uploaded APK, screenshot, stop,
// start (the app is still installed), delete; the host's allocation returns to zero and the device
// events tell the whole path.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Agent } from '@cphone/host-agent';
import { ArtifactKind, ArtifactService, DeviceState, HostState } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { type Harness, startHarness } from './harness.js';

const repoRoot = new URL('../../', import.meta.url).pathname;
let h: Harness;
let agent: Agent;

before(async () => {
  h = await startHarness();
  agent = await h.startAgent();
  await h.waitForHost(HostState.READY, true);
});

after(async () => {
  await agent?.close();
  await h?.close();
});

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');

async function upload(path: string): Promise<string> {
  const bytes = await readFile(path);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const artifacts = h.client(ArtifactService);
  const created = await artifacts.createUpload({
    tenantId: h.tenantId,
    kind: ArtifactKind.APK,
    filename: 'test-app.apk',
    sizeBytes: BigInt(bytes.length),
    sha256,
  });
  const up = created.upload;
  assert.ok(up, 'a new upload');
  const chunk = up.maxChunkBytes > 0 ? up.maxChunkBytes : 1024 * 1024;
  for (let offset = 0; offset < bytes.length; offset += chunk) {
    await artifacts.uploadChunk({
      uploadId: up.uploadId,
      offset: BigInt(offset),
      data: bytes.subarray(offset, offset + chunk),
    });
  }
  const { artifact } = await artifacts.finalizeUpload({ uploadId: up.uploadId });
  assert.equal(artifact?.apk?.packageName, 'dev.cphone.testapp');
  return sha256;
}

test('a phone goes from create to deleted through the API, run by a real agent', async () => {
  const created = await h.createPhone('life');
  assert.equal(created.hostId, h.hostId);
  const running = await h.waitForState(created.deviceId, DeviceState.RUNNING);
  assert.notEqual(running.adbEndpoint, '', 'a running phone reports its adb endpoint');

  const model = await h.devices.execShell({
    deviceId: created.deviceId,
    command: 'getprop ro.product.model',
  });
  assert.equal(model.exitCode, 0);
  assert.notEqual(text(model.stdout).trim(), '');
  const failing = await h.devices.execShell({ deviceId: created.deviceId, command: 'exit 3' });
  assert.equal(failing.exitCode, 3);

  const sha256 = await upload(join(repoRoot, 'host-agent/fixtures/test-app.apk'));
  const installed = await h.devices.installApp({ deviceId: created.deviceId, artifactSha256: sha256 });
  assert.equal(installed.packageName, 'dev.cphone.testapp');
  const packages = await h.devices.execShell({ deviceId: created.deviceId, command: 'pm list packages' });
  assert.equal(packages.exitCode, 0);
  assert.match(text(packages.stdout), /^package:dev\.cphone\.testapp$/m);

  const shot = await h.devices.takeScreenshot({ deviceId: created.deviceId });
  assert.deepEqual([...shot.png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(shot.widthPx > 0 && shot.heightPx > 0);

  await h.devices.stopDevice({ deviceId: created.deviceId });
  await h.waitForState(created.deviceId, DeviceState.STOPPED);
  await h.devices.startDevice({ deviceId: created.deviceId });
  await h.waitForState(created.deviceId, DeviceState.RUNNING);
  const again = await h.devices.execShell({
    deviceId: created.deviceId,
    command: 'getprop sys.boot_completed',
  });
  assert.deepEqual([again.exitCode, text(again.stdout).trim()], [0, '1'], 'the restarted phone answers');
  const kept = await h.devices.execShell({ deviceId: created.deviceId, command: 'pm list packages' });
  assert.equal(kept.exitCode, 0);
  assert.match(text(kept.stdout), /^package:dev\.cphone\.testapp$/m, 'the app outlives stop/start');

  await h.devices.deleteDevice({ deviceId: created.deviceId });
  await h.waitForState(created.deviceId, DeviceState.DELETED);
  const host = await waitFor(
    'the host allocation to return to zero',
    async () => (await h.hosts.getHost({ hostId: h.hostId })).host?.allocated,
    (a) => a !== undefined && a.devices === 0 && a.vcpuMillicores === 0n && a.memoryBytes === 0n,
  );
  assert.equal(host?.storageBytes, 0n);
  assert.deepEqual(await agent.reconciler.inventory(), [], 'the agent runs nothing');

  const { deviceEvents } = await h.devices.listDeviceEvents({ deviceId: created.deviceId, pageSize: 100 });
  // Newest first on the wire; the path reads oldest first.
  const path = deviceEvents.map((e) => DeviceState[e.toState]).reverse();
  assert.deepEqual(path, [
    'SCHEDULED',
    'CREATING',
    'BOOTING',
    'RUNNING',
    'STOPPING',
    'STOPPED',
    'BOOTING',
    'RUNNING',
    'DELETING',
    'DELETED',
  ]);
  assert.ok(deviceEvents.every((e) => e.hostId === h.hostId));
});
