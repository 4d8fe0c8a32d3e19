import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import {
  type CreateDeviceRequest,
  CreateDeviceRequestSchema,
  DeviceSpecSchema,
  DeviceState,
  PlacementSchema,
  PowerState,
  RestartPolicy,
  SpreadStrategy,
} from '@cphone/proto';
import { connectError } from '../api/test-api.js';
import { insertHosts } from '../placement/testing.js';
import { ANDROID_14, type DeviceTestServer, startDeviceTestServer } from './testing.js';

let server: DeviceTestServer;
let user: ReturnType<DeviceTestServer['clients']>;
let other: ReturnType<DeviceTestServer['clients']>;

const IMAGE = 'android-14';

/** A create on hosts labeled pool=<pool>, so each test places on hosts of its own. */
function phone(
  pool: string,
  init: MessageInitShape<typeof CreateDeviceRequestSchema> = {},
): CreateDeviceRequest {
  const req = create(CreateDeviceRequestSchema, init);
  req.spec ??= create(DeviceSpecSchema, {
    imageId: IMAGE,
    vcpuMillicores: 1000,
    memoryMib: 2048,
    storageGib: 16,
  });
  req.placement ??= create(PlacementSchema, { nodeSelector: { pool } });
  return req;
}

before(async () => {
  server = await startDeviceTestServer();
  const admin = server.clients(server.api.adminToken);
  await admin.images.createImage({ imageId: IMAGE, image: ANDROID_14 });
  user = server.clients(await server.addTenant('acme'));
  other = server.clients(await server.addTenant('globex'));
  await insertHosts(server.store.db, [
    { id: 'crud-1', labels: { pool: 'crud' }, devices: 50, vcpu: 64_000, memoryMib: 131_072 },
    { id: 'crud-2', labels: { pool: 'crud' }, devices: 50, vcpu: 64_000, memoryMib: 131_072 },
    { id: 'life-1', labels: { pool: 'life' } },
    { id: 'iso-1', labels: { pool: 'iso' } },
    { id: 'act-1', labels: { pool: 'act' } },
    { id: 'tree-1', labels: { pool: 'tree' } },
  ]);
});

after(() => server.close());

test('a batch create places, persists and lists devices with pagination and filters', async () => {
  const created = await user.devices.batchCreateDevices({
    requests: [
      phone('crud', { displayName: 'alpha', labels: { team: 'qa' } }),
      phone('crud', { labels: { team: 'qa' }, desiredPowerState: PowerState.STOPPED }),
      phone('crud', {
        labels: { team: 'dev' },
        spec: { imageId: IMAGE },
        restartPolicy: RestartPolicy.NEVER,
      }),
    ],
  });
  assert.equal(created.devices.length, 3);
  const [a, b, c] = created.devices;
  assert.ok(a && b && c);
  assert.equal(a.state, DeviceState.SCHEDULED);
  assert.equal(a.displayName, 'alpha');
  assert.equal(b.displayName, b.deviceId, 'an empty name becomes the id');
  assert.equal(a.tenantId, 'acme');
  assert.match(a.hostId, /^crud-/);
  assert.equal(b.desiredPowerState, PowerState.STOPPED);
  assert.equal(a.desiredPowerState, PowerState.RUNNING);
  assert.equal(c.restartPolicy, RestartPolicy.NEVER);
  // Unset resources take the image's defaults; the container image is filled in, and only
  // operators see it (it is the platform's, deprecated in the public spec).
  assert.deepEqual([c.spec?.vcpuMillicores, c.spec?.memoryMib, c.spec?.storageGib], [2000, 4096, 32]);
  assert.equal(c.spec?.imageRef, '');
  const operatorView = await server
    .clients(server.api.adminToken)
    .devices.getDevice({ deviceId: c.deviceId });
  assert.equal(operatorView.device?.spec?.imageRef, 'redroid/redroid:14.0.0_64only-latest');
  assert.deepEqual(
    [c.spec?.screen?.widthPx, c.spec?.screen?.heightPx, c.spec?.screen?.dpi, c.spec?.screen?.fps],
    [720, 1280, 320, 30],
  );
  assert.equal(a.specRevision, 1n);
  assert.ok(a.createTime && a.stateChangeTime);

  const got = await user.devices.getDevice({ deviceId: a.deviceId });
  assert.deepEqual(got.device, a);
  // Binpack keeps a small batch on one host; the host was told and its allocation grew.
  assert.ok(server.desired.includes(a.hostId));
  const host = await server.store.db
    .selectFrom('host')
    .selectAll()
    .where('id', '=', a.hostId)
    .executeTakeFirstOrThrow();
  assert.equal(host.allocated_devices, 3);
  assert.equal(host.allocated_vcpu_millicores, 4000);
  assert.ok(host.desired_revision >= 1);

  const page1 = await user.devices.listDevices({ pageSize: 2 });
  assert.equal(page1.devices.length, 2);
  assert.notEqual(page1.nextPageToken, '');
  const page2 = await user.devices.listDevices({ pageSize: 2, pageToken: page1.nextPageToken });
  const ids = [...page1.devices, ...page2.devices].map((d) => d.deviceId);
  assert.deepEqual(ids, [c.deviceId, b.deviceId, a.deviceId], 'newest first, no overlap');
  assert.equal(page2.nextPageToken, '');

  const qa = await user.devices.listDevices({ labelSelector: { team: 'qa' } });
  assert.deepEqual(qa.devices.map((d) => d.deviceId).sort(), [a.deviceId, b.deviceId].sort());
  const onHost = await user.devices.listDevices({ hostId: a.hostId, states: [DeviceState.SCHEDULED] });
  assert.equal(onHost.devices.length, 3);
  assert.equal((await user.devices.listDevices({ states: [DeviceState.RUNNING] })).devices.length, 0);
  assert.equal((await user.devices.listDevices({ imageId: 'nope' })).devices.length, 0);
  await assert.rejects(
    user.devices.listDevices({ pageSize: 2, pageToken: page1.nextPageToken, labelSelector: { team: 'qa' } }),
    connectError(Code.InvalidArgument, /page_token.*another query/),
  );

  const events = await user.devices.listDeviceEvents({ deviceId: a.deviceId });
  assert.equal(events.deviceEvents.length, 1);
  assert.equal(events.deviceEvents[0]?.fromState, DeviceState.UNSPECIFIED);
  assert.equal(events.deviceEvents[0]?.toState, DeviceState.SCHEDULED);
  assert.equal(events.deviceEvents[0]?.hostId, a.hostId);
});

test('a retry with the same request_id returns the same devices and creates nothing', async () => {
  const body = { requestId: 'retry-1', requests: [phone('crud'), phone('crud')] };
  const first = await user.devices.batchCreateDevices(body);
  const count = async () =>
    Number(
      (
        await server.store.db
          .selectFrom('device')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const before = await count();
  const second = await user.devices.batchCreateDevices(body);
  assert.deepEqual(
    second.devices.map((d) => d.deviceId),
    first.devices.map((d) => d.deviceId),
  );
  assert.equal(await count(), before);
  await assert.rejects(
    user.devices.batchCreateDevices({ requestId: 'retry-1', requests: [phone('crud')] }),
    connectError(Code.InvalidArgument, /request_id.*different request/),
  );
  assert.equal(await count(), before);
});

test('bad input names the field and value and writes nothing', async () => {
  const snapshot = async () => ({
    devices: (await server.store.db.selectFrom('device').select('id').execute()).length,
    allocated: await server.store.db
      .selectFrom('host')
      .select(['id', 'allocated_devices'])
      .orderBy('id')
      .execute(),
    keys: (await server.store.db.selectFrom('idempotency_key').select('key').execute()).length,
  });
  const before = await snapshot();
  const cases: [Parameters<typeof user.devices.batchCreateDevices>[0], Code, RegExp][] = [
    [{ requests: [] }, Code.InvalidArgument, /requests.*0 requests.*1\.\.100/],
    [
      { requests: Array.from({ length: 101 }, () => phone('crud')) },
      Code.InvalidArgument,
      /requests.*101 requests/,
    ],
    [
      {
        requestId: 'bad-1',
        requests: [phone('crud'), phone('crud', { spec: { imageId: 'no-such-image' } })],
      },
      Code.NotFound,
      /requests\[1\]\.spec\.image_id.*no-such-image/,
    ],
    [
      { requests: [phone('crud'), phone('crud', { spec: { imageId: IMAGE, memoryMib: -5 } })] },
      Code.InvalidArgument,
      /requests\[1\]\.spec\.memory_mib -5/,
    ],
    [
      { requests: [phone('crud', { spec: { imageId: IMAGE, memoryMib: 512 } })] },
      Code.InvalidArgument,
      /requests\[0\]\.spec\.memory_mib 512.*minimum 1024/,
    ],
    [
      { requests: [phone('crud', { spec: { imageId: IMAGE, screen: { widthPx: 9000 } } })] },
      Code.InvalidArgument,
      /requests\[0\]\.spec\.screen\.width_px 9000/,
    ],
    [
      { requests: [phone('crud', { spec: { imageId: IMAGE, screen: { fps: 240 } } })] },
      Code.InvalidArgument,
      /screen\.fps 240/,
    ],
    [
      { requests: [phone('crud', { spec: { imageId: IMAGE, properties: { 'sys.evil': '1' } } })] },
      Code.InvalidArgument,
      /requests\[0\]\.spec\.properties\["sys\.evil"\]/,
    ],
    [
      { requests: [phone('crud', { placement: { arch: 'amd64' } })] },
      Code.InvalidArgument,
      /requests\[0\]\.placement\.arch "amd64".*runs only on arm64/,
    ],
    [
      { requests: [phone('crud', { placement: { hostId: 'crud-1' } })] },
      Code.PermissionDenied,
      /requests\[0\]\.placement\.host_id/,
    ],
    [
      { requests: [phone('nowhere')] },
      Code.ResourceExhausted,
      /requests\[0\] cannot be placed.*label-selector/,
    ],
    [{ tenantId: 'globex', requests: [phone('crud')] }, Code.NotFound, /tenant "globex"/],
  ];
  for (const [req, code, pattern] of cases) {
    await assert.rejects(user.devices.batchCreateDevices(req), connectError(code, pattern));
  }
  assert.deepEqual(await snapshot(), before);
});

test('start, stop, reboot and delete follow the state machine and record events', async () => {
  const { devices } = await user.devices.batchCreateDevices({ requests: [phone('life')] });
  const id = devices[0]?.deviceId ?? '';
  server.desired.length = 0;
  await assert.rejects(
    user.devices.startDevice({ deviceId: id }),
    connectError(Code.FailedPrecondition, /is scheduled.*already set to run/),
  );
  const stopped = await user.devices.stopDevice({ deviceId: id });
  assert.equal(stopped.device?.desiredPowerState, PowerState.STOPPED);
  assert.deepEqual(server.desired, ['life-1']);
  await assert.rejects(
    user.devices.stopDevice({ deviceId: id }),
    connectError(Code.FailedPrecondition, /already set to stop/),
  );
  const started = await user.devices.startDevice({ deviceId: id });
  assert.equal(started.device?.desiredPowerState, PowerState.RUNNING);
  await assert.rejects(
    user.devices.rebootDevice({ deviceId: id, hard: true }),
    connectError(Code.FailedPrecondition, /is scheduled: only a running device/),
  );

  // The agent reports it running (as the gateway would, through the state machine).
  await server.store.db.updateTable('device').set({ state: 'running' }).where('id', '=', id).execute();
  const revision = async () =>
    (
      await server.store.db
        .selectFrom('device')
        .select('restart_generation')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).restart_generation;
  const generation = await revision();
  await user.devices.rebootDevice({ deviceId: id, hard: true });
  assert.equal(await revision(), generation + 1);

  const updated = await user.devices.updateDevice({
    device: {
      deviceId: id,
      displayName: 'renamed',
      labels: { env: 'prod' },
      restartPolicy: RestartPolicy.ON_FAILURE,
    },
    updateMask: { paths: ['display_name', 'labels', 'restart_policy'] },
  });
  assert.equal(updated.device?.displayName, 'renamed');
  assert.deepEqual(updated.device?.labels, { env: 'prod' });
  assert.equal(updated.device?.restartPolicy, RestartPolicy.ON_FAILURE);
  await assert.rejects(
    user.devices.updateDevice({ device: { deviceId: id }, updateMask: { paths: ['spec'] } }),
    connectError(Code.InvalidArgument, /update_mask "spec"/),
  );

  const deleted = await user.devices.deleteDevice({ deviceId: id });
  assert.equal(deleted.device?.state, DeviceState.DELETING);
  assert.ok(deleted.device?.deleteTime);
  await assert.rejects(
    user.devices.deleteDevice({ deviceId: id }),
    connectError(Code.FailedPrecondition, /is deleting/),
  );
  await assert.rejects(
    user.devices.startDevice({ deviceId: id }),
    connectError(Code.FailedPrecondition, /is deleting/),
  );
  await assert.rejects(
    user.devices.execShell({ deviceId: id, command: 'id' }),
    connectError(Code.FailedPrecondition, /is deleting: it must be running/),
  );

  const events = await user.devices.listDeviceEvents({ deviceId: id, pageSize: 1 });
  assert.equal(events.deviceEvents.length, 1);
  assert.equal(events.deviceEvents[0]?.toState, DeviceState.DELETING);
  assert.equal(events.deviceEvents[0]?.reason, 'USER_DELETE');
  const rest = await user.devices.listDeviceEvents({ deviceId: id, pageToken: events.nextPageToken });
  assert.deepEqual(
    rest.deviceEvents.map((e) => e.toState),
    [DeviceState.SCHEDULED],
  );
  // Deleting devices leave the default list; asking for the state shows them.
  const listed = await user.devices.listDevices({ states: [DeviceState.DELETING] });
  assert.deepEqual(
    listed.devices.map((d) => d.deviceId),
    [id],
  );
});

test('includeDescendants lists a reseller’s and its customers’ devices, never a parent’s or a sibling’s', async () => {
  const reseller = server.clients(await server.addTenant('tree-r', 'tenant_admin'));
  const customer = server.clients(await server.addTenant('tree-c1', 'tenant_user', 'tree-r'));
  const sibling = server.clients(await server.addTenant('tree-c2', 'tenant_user', 'tree-r'));
  const made = async (c: typeof reseller) =>
    (await c.devices.batchCreateDevices({ requests: [phone('tree')] })).devices[0]?.deviceId ?? '';
  const [ownId, customerId, siblingId] = [await made(reseller), await made(customer), await made(sibling)];
  const ids = async (c: typeof reseller, tenantId?: string) =>
    (await c.devices.listDevices({ includeDescendants: true, ...(tenantId ? { tenantId } : {}) })).devices
      .map((d) => d.deviceId)
      .sort();
  assert.deepEqual(await ids(reseller), [ownId, customerId, siblingId].sort());
  assert.deepEqual(await ids(reseller, 'tree-c1'), [customerId]);
  assert.deepEqual(await ids(customer), [customerId]);
  await assert.rejects(
    customer.devices.listDevices({ includeDescendants: true, tenantId: 'tree-r' }),
    connectError(Code.NotFound, /tenant "tree-r"/),
  );
});

test("another tenant's device is NOT_FOUND and never listed", async () => {
  const { devices } = await user.devices.batchCreateDevices({ requests: [phone('iso')] });
  const id = devices[0]?.deviceId ?? '';
  const missing = connectError(Code.NotFound, new RegExp(`device "${id}" not found`));
  await assert.rejects(other.devices.getDevice({ deviceId: id }), missing);
  await assert.rejects(other.devices.stopDevice({ deviceId: id }), missing);
  await assert.rejects(other.devices.deleteDevice({ deviceId: id }), missing);
  await assert.rejects(other.devices.listDeviceEvents({ deviceId: id }), missing);
  await assert.rejects(other.devices.takeScreenshot({ deviceId: id }), missing);
  assert.equal((await other.devices.listDevices({})).devices.length, 0);
  await assert.rejects(
    other.devices.listDevices({ tenantId: 'acme' }),
    connectError(Code.NotFound, /tenant "acme"/),
  );
  // A platform admin sees everything it manages, including the ADB endpoint.
  const admin = server.clients(server.api.adminToken);
  const seen = await admin.devices.listDevices({ includeDescendants: true, hostId: 'iso-1' });
  assert.deepEqual(
    seen.devices.map((d) => d.deviceId),
    [id],
  );
  assert.equal(
    (
      await other.devices.getDevice({
        deviceId:
          (await other.devices.batchCreateDevices({ requests: [phone('iso')] })).devices[0]?.deviceId ?? '',
      })
    ).device?.tenantId,
    'globex',
  );
});

test('agent-backed actions send one command to the running device and map its answer', async () => {
  const { devices } = await user.devices.batchCreateDevices({
    requests: [
      phone('act', { placement: { nodeSelector: { pool: 'act' }, spread: SpreadStrategy.SPREAD_TENANT } }),
    ],
  });
  const id = devices[0]?.deviceId ?? '';
  await assert.rejects(
    user.devices.takeScreenshot({ deviceId: id }),
    connectError(Code.FailedPrecondition, /is scheduled/),
  );
  await server.store.db.updateTable('device').set({ state: 'running' }).where('id', '=', id).execute();

  server.answer = () => ({
    code: 1,
    result: { case: 'shell', value: { exitCode: 0, stdout: new TextEncoder().encode('14\n') } },
  });
  const shell = await user.devices.execShell({ deviceId: id, command: 'getprop ro.build.version.release' });
  assert.equal(new TextDecoder().decode(shell.stdout), '14\n');
  const sent = server.commands.at(-1);
  assert.equal(sent?.hostId, 'act-1');
  assert.equal(sent?.kind.case, 'shell');

  server.answer = () => ({ code: 9, message: 'INSTALL_FAILED_OLDER_SDK' });
  const sha = 'a'.repeat(64);
  await assert.rejects(
    user.devices.installApp({ deviceId: id, artifactSha256: sha }),
    connectError(Code.NotFound, /artifact "a{64}"/),
  );
  await server.store.db
    .insertInto('artifact')
    .values({
      tenant_id: 'acme',
      sha256: sha,
      kind: 'apk',
      size_bytes: 1234,
      filename: 'app.apk',
      package_name: 'com.example',
      version_code: 1,
      version_name: '1.0',
    })
    .execute();
  await assert.rejects(
    user.devices.installApp({ deviceId: id, artifactSha256: sha }),
    connectError(Code.Aborted, /INSTALL_FAILED_OLDER_SDK/),
  );
  const install = server.commands.at(-1)?.kind;
  assert.equal(install?.case, 'installApp');
  assert.equal(
    install?.case === 'installApp' ? install.value.downloadUrl : '',
    `http://cp.test:8080/agent/v1/artifacts/${sha}`,
  );
  await assert.rejects(
    user.devices.installApp({ deviceId: id, artifactSha256: 'XYZ' }),
    connectError(Code.InvalidArgument, /artifact_sha256 "XYZ"/),
  );
  await assert.rejects(
    user.devices.execShell({ deviceId: id, command: 'sleep 1', timeout: { seconds: 601n } }),
    connectError(Code.InvalidArgument, /timeout "601s"/),
  );
  server.answer = () => ({ code: 1, result: { case: 'reboot', value: {} } });
  const rebooted = await user.devices.rebootDevice({ deviceId: id });
  assert.equal(rebooted.device?.deviceId, id);
  assert.equal(server.commands.at(-1)?.kind.case, 'reboot');
});
