import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { ImageState } from '@cphone/proto';
import { connectError } from '../api/test-api.js';
import { type DeviceTestServer, startDeviceTestServer } from '../devices/testing.js';
import { insertHosts } from '../placement/testing.js';

let server: DeviceTestServer;
let admin: ReturnType<DeviceTestServer['clients']>;
let acmeAdmin: ReturnType<DeviceTestServer['clients']>;
let acmeUser: ReturnType<DeviceTestServer['clients']>;
let customer: ReturnType<DeviceTestServer['clients']>;
let globex: ReturnType<DeviceTestServer['clients']>;

const image = (containerImage: string, extra: Record<string, unknown> = {}) => ({
  displayName: containerImage,
  containerImage,
  archs: ['arm64'],
  ...extra,
});

before(async () => {
  server = await startDeviceTestServer();
  admin = server.clients(server.api.adminToken);
  acmeAdmin = server.clients(await server.addTenant('acme', 'tenant_admin'));
  acmeUser = server.clients(await server.api.token('acme', 'tenant_user'));
  customer = server.clients(await server.addTenant('acme-shop', 'tenant_user', 'acme'));
  globex = server.clients(await server.addTenant('globex', 'tenant_admin'));
  await insertHosts(server.store.db, [{ id: 'img-host' }]);
});

after(() => server.close());

test('platform images are public, tenant images serve the tenant and its customers only', async () => {
  const pub = await admin.images.createImage({ imageId: 'android-13', image: image('redroid/redroid:13') });
  assert.equal(pub.image?.tenantId, 'platform');
  assert.equal(pub.image?.state, ImageState.ACTIVE);
  const own = await acmeAdmin.images.createImage({
    image: image('registry.acme/android:14', {
      defaultSpec: { vcpuMillicores: 1500, memoryMib: 3072, storageGib: 8 },
    }),
  });
  const ownId = own.image?.imageId ?? '';
  assert.match(ownId, /^img_/);
  assert.equal(own.image?.tenantId, 'acme');
  assert.equal(own.image?.defaultSpec?.memoryMib, 3072);

  const ids = async (c: typeof admin) => (await c.images.listImages({})).images.map((i) => i.imageId).sort();
  assert.deepEqual(await ids(acmeUser), ['android-13', ownId].sort());
  assert.deepEqual(
    await ids(customer),
    ['android-13', ownId].sort(),
    "a reseller's images serve its customers",
  );
  assert.deepEqual(await ids(globex), ['android-13']);
  await assert.rejects(
    globex.images.getImage({ imageId: ownId }),
    connectError(Code.NotFound, new RegExp(ownId)),
  );
  const created = await customer.devices.batchCreateDevices({ requests: [{ spec: { imageId: ownId } }] });
  assert.equal(created.devices[0]?.spec?.vcpuMillicores, 1500);
  await assert.rejects(
    globex.devices.batchCreateDevices({ requests: [{ spec: { imageId: ownId } }] }),
    connectError(Code.NotFound, /requests\[0\]\.spec\.image_id/),
  );
  assert.deepEqual(
    (await acmeUser.images.listImages({ arch: 'amd64' })).images.map((i) => i.imageId),
    [],
  );
});

test('writing images needs the right role and valid fields', async () => {
  await assert.rejects(
    acmeUser.images.createImage({ image: image('x/y:1') }),
    connectError(Code.PermissionDenied, /tenant_admin/),
  );
  await assert.rejects(
    acmeAdmin.images.createImage({ tenantId: 'platform', image: image('x/y:1') }),
    connectError(Code.NotFound, /tenant "platform"/),
  );
  await assert.rejects(
    acmeAdmin.images.updateImage({
      image: { imageId: 'android-13', displayName: 'mine' },
      updateMask: { paths: ['display_name'] },
    }),
    connectError(Code.PermissionDenied, /platform image/),
  );
  const cases: [Parameters<typeof admin.images.createImage>[0], RegExp][] = [
    [{ imageId: 'Bad_Id', image: image('x/y:1') }, /image_id "Bad_Id"/],
    [{ image: image('', { displayName: 'empty' }) }, /image\.container_image ""/],
    [{ image: image('x/y:1', { archs: ['arm64', 'mips'] }) }, /image\.archs\[1\] "mips"/],
    [{ image: image('x/y:1', { minMemoryMib: -1 }) }, /image\.min_memory_mib -1/],
    [
      { image: image('x/y:1', { defaultSpec: { screen: { dpi: 5 } } }) },
      /image\.default_spec\.screen\.dpi 5/,
    ],
    [
      { image: image('x/y:1', { minMemoryMib: 2048, defaultSpec: { memoryMib: 1024 } }) },
      /image\.default_spec\.memory_mib 1024.*min_memory_mib 2048/,
    ],
  ];
  for (const [req, pattern] of cases)
    await assert.rejects(acmeAdmin.images.createImage(req), connectError(Code.InvalidArgument, pattern));
  await assert.rejects(
    admin.images.createImage({ imageId: 'android-13', image: image('redroid/redroid:13') }),
    connectError(Code.AlreadyExists, /android-13/),
  );
  const first = await acmeAdmin.images.createImage({ requestId: 'img-1', image: image('x/y:2') });
  const again = await acmeAdmin.images.createImage({ requestId: 'img-1', image: image('x/y:2') });
  assert.equal(again.image?.imageId, first.image?.imageId);
});

test('deprecated images keep their devices but take no new ones; deletion waits for the last device', async () => {
  const created = await acmeAdmin.images.createImage({ imageId: 'short-lived', image: image('x/short:1') });
  assert.equal(created.image?.imageId, 'short-lived');
  const { devices } = await acmeUser.devices.batchCreateDevices({
    requests: [{ spec: { imageId: 'short-lived', vcpuMillicores: 500, memoryMib: 1024, storageGib: 4 } }],
  });
  const deviceId = devices[0]?.deviceId ?? '';
  const updated = await acmeAdmin.images.updateImage({
    image: { imageId: 'short-lived', state: ImageState.DEPRECATED, labels: { eol: 'yes' } },
    updateMask: { paths: ['state', 'labels'] },
  });
  assert.equal(updated.image?.state, ImageState.DEPRECATED);
  assert.deepEqual(updated.image?.labels, { eol: 'yes' });
  assert.ok(!(await acmeUser.images.listImages({})).images.some((i) => i.imageId === 'short-lived'));
  assert.ok(
    (await acmeUser.images.listImages({ includeDeprecated: true })).images.some(
      (i) => i.imageId === 'short-lived',
    ),
  );
  await assert.rejects(
    acmeUser.devices.batchCreateDevices({
      requests: [{ spec: { imageId: 'short-lived', vcpuMillicores: 500, memoryMib: 1024, storageGib: 4 } }],
    }),
    connectError(Code.FailedPrecondition, /requests\[0\]\.spec\.image_id: image "short-lived" is deprecated/),
  );
  await assert.rejects(
    acmeAdmin.images.deleteImage({ imageId: 'short-lived' }),
    connectError(Code.FailedPrecondition, /used by 1 device/),
  );
  await server.store.db.updateTable('device').set({ state: 'deleted' }).where('id', '=', deviceId).execute();
  await acmeAdmin.images.deleteImage({ imageId: 'short-lived' });
  await assert.rejects(
    acmeUser.images.getImage({ imageId: 'short-lived' }),
    connectError(Code.NotFound, /short-lived/),
  );
});
