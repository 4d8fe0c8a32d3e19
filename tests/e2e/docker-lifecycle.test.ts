// The phone lifecycle through the public API with the agent's docker runtime against podman's
// Docker Engine API: the stand-in image (busybox + node) runs the virtual phone from an esbuild
// bundle, with Redroid's create options. Containers and volumes of this file's scope are removed in
// `after`. Without podman or the stand-in image this file fails naming the missing piece.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Agent, DockerRuntime, LABEL_DEVICE_ID, LABEL_SCOPE } from '@cphone/host-agent';
import {
  bundleStandinPhone,
  connectEngine,
  removeScope,
  volumeName,
  writeStandInServer,
} from '@cphone/host-agent/testing';
import { DeviceState, HostState, StreamRights } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { launchChromium, ViewerPage } from '@cphone/sfu/testing';
import type Docker from 'dockerode';
import { type Harness, startHarness } from './harness.js';
import { type EmbedServer, PlayerPage, startEmbedServer } from './player-page.js';

let h: Harness | undefined;
let agent: Agent | undefined;
let docker: Docker | undefined;
let runtime: DockerRuntime;
let engine: Awaited<ReturnType<typeof connectEngine>>;
let bundle: { dir: string; binds: string[] } | undefined;
const scope = `e2e-${randomBytes(3).toString('hex')}`;
/** The stand-in phone emulates scrcpy's server: it is pushed a stand-in file, checked by its own hash. */
let scrcpyServer: { path: string; sha256: string };
let serverDir: string | undefined;
const startDockerAgent = () =>
  (h as Harness).startAgent({ env: { CPHONE_RUNTIME: 'docker' }, deps: { runtime, scrcpyServer } });

/** A runtime as a fresh agent process opens it: same engine, same label scope. */
function openRuntime(): DockerRuntime {
  return new DockerRuntime({
    socketPath: engine.socketPath,
    config: {
      scope,
      network: 'cphone-test',
      pullPolicy: 'never',
      imageOverride: engine.image,
      binds: bundle?.binds ?? [],
    },
  });
}

before(async () => {
  engine = await connectEngine();
  docker = engine.docker;
  bundle = await bundleStandinPhone();
  runtime = openRuntime();
  serverDir = await mkdtemp(join(tmpdir(), 'cphone-scrcpy-'));
  scrcpyServer = await writeStandInServer(serverDir);
  h = await startHarness();
  agent = await startDockerAgent();
  await h.waitForHost(HostState.READY, true);
});

after(async () => {
  await agent?.close();
  await h?.close();
  await runtime?.close();
  if (docker) await removeScope(docker, scope);
  if (bundle) await rm(bundle.dir, { recursive: true, force: true });
  if (serverDir) await rm(serverDir, { recursive: true, force: true });
});

test('a phone in a container goes from create to deleted through the API', async () => {
  assert.ok(h && docker);
  const created = await h.createPhone('docker-life');
  const running = await h.waitForState(created.deviceId, DeviceState.RUNNING, 40_000);
  assert.match(running.adbEndpoint, /^127\.0\.0\.1:\d+$/, 'adbd published on loopback');

  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL_SCOPE}=${scope}`] },
  });
  assert.equal(containers.length, 1);
  assert.equal(containers[0]?.State, 'running');
  const volume = volumeName(runtime.config, created.deviceId);
  await docker.getVolume(volume).inspect();

  const model = await h.devices.execShell({
    deviceId: created.deviceId,
    command: 'getprop ro.product.model',
  });
  assert.equal(model.exitCode, 0);
  assert.notEqual(Buffer.from(model.stdout).toString('utf8').trim(), '');

  await h.devices.stopDevice({ deviceId: created.deviceId });
  await h.waitForState(created.deviceId, DeviceState.STOPPED, 20_000);
  assert.equal((await runtime.inspect(created.deviceId))?.state, 'exited');

  await h.devices.deleteDevice({ deviceId: created.deviceId });
  await h.waitForState(created.deviceId, DeviceState.DELETED, 20_000);
  assert.equal(await runtime.inspect(created.deviceId), undefined, 'the container is gone');
  await waitFor(
    `volume ${volume} to be removed`,
    () =>
      docker
        ?.getVolume(volume)
        .inspect()
        .then(
          () => 'present',
          () => 'gone',
        ),
    (v) => v === 'gone',
  );
  const host = (await h.hosts.getHost({ hostId: h.hostId })).host;
  assert.equal(host?.allocated?.devices, 0);
});

test('a phone in a container streams its screen and sound to Chromium through the agent, and plays in the player element', async () => {
  assert.ok(h);
  const created = await h.createPhone('docker-stream');
  await h.waitForState(created.deviceId, DeviceState.RUNNING, 40_000);
  const { streamSession: s } = await h.devices.createStreamSession({
    deviceId: created.deviceId,
    rights: StreamRights.CONTROL,
  });
  assert.ok(s);
  const browser = await launchChromium();
  let server: EmbedServer | undefined;
  try {
    const page = await ViewerPage.open(await browser.newContext({ ignoreHTTPSErrors: true }));
    await page.start({ url: s.sfuUrl, token: s.token });
    const state = await waitFor(
      'frames from the container',
      () => page.state(),
      (v) => v.frames >= 10,
    );
    assert.ok(state.width > 0 && state.height > state.width, `${state.width}x${state.height}`);
    await waitFor(
      'sound from the container',
      () => page.received(),
      (r) => r.audio > 20,
    );
    await page.request('leave').catch(() => undefined);
    // The same phone in <cphone-player>, as a reseller's page embeds it, on a VIEW session.
    const { streamSession: view } = await h.devices.createStreamSession({
      deviceId: created.deviceId,
      rights: StreamRights.VIEW,
    });
    assert.ok(view);
    server = await startEmbedServer();
    const player = await PlayerPage.open(await browser.newContext({ ignoreHTTPSErrors: true }), server);
    await player.add({ 'view-only': '' }, { sfuUrl: view.sfuUrl, token: view.token });
    const shown = await waitFor(
      'frames from the container in the player',
      () => player.snapshot(),
      (v) => v.frames >= 10,
    );
    assert.ok(
      shown.size.height > shown.size.width && shown.firstFrameMs !== undefined,
      JSON.stringify(shown.size),
    );
  } finally {
    await browser.close();
    await server?.close();
  }
  await h.devices.deleteDevice({ deviceId: created.deviceId });
  await h.waitForState(created.deviceId, DeviceState.DELETED, 20_000);
});

test('an agent killed while its phone boots is replaced by one that adopts the container', async () => {
  assert.ok(h && docker);
  const created = await h.createPhone('docker-crash');
  const filters = { label: [`${LABEL_SCOPE}=${scope}`] };
  // Die as soon as the container exists, before the phone has booted.
  await waitFor(
    'the phone container to exist',
    () => docker?.listContainers({ all: true, filters }).then((c) => c.length) ?? 0,
    (n) => n > 0,
    { intervalMs: 20 },
  );
  assert.notEqual((await h.device(created.deviceId)).state, DeviceState.RUNNING, 'killed before RUNNING');
  await agent?.close();
  await runtime.close();

  runtime = openRuntime();
  agent = await startDockerAgent();
  await h.waitForState(created.deviceId, DeviceState.RUNNING, 40_000);
  const containers = await docker.listContainers({ all: true, filters });
  assert.deepEqual(
    containers.map((c) => [c.Labels[LABEL_DEVICE_ID] ?? c.Names[0], c.State]),
    [[created.deviceId, 'running']],
    'one container, no duplicate and no orphan',
  );
  const shell = await h.devices.execShell({
    deviceId: created.deviceId,
    command: 'getprop sys.boot_completed',
  });
  assert.equal(Buffer.from(shell.stdout).toString('utf8').trim(), '1');
  await h.devices.deleteDevice({ deviceId: created.deviceId });
  await h.waitForState(created.deviceId, DeviceState.DELETED, 20_000);
  assert.deepEqual(await docker.listContainers({ all: true, filters }), []);
});
