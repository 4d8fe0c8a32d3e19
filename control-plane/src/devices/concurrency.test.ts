import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { type CreateDeviceRequest, CreateDeviceRequestSchema } from '@cphone/proto';
import { allocationReport, insertHosts } from '../placement/testing.js';
import { type DeviceTestServer, startDeviceTestServer } from './testing.js';

// On PGlite every transaction runs alone; on PostgreSQL (DATABASE_URL) the creates really race for
// the same host rows. Either way no host may end up over its effective capacity.

let server: DeviceTestServer;
let user: ReturnType<DeviceTestServer['clients']>;

const phone = (pool: string): CreateDeviceRequest =>
  create(CreateDeviceRequestSchema, {
    spec: { imageId: 'android-14', vcpuMillicores: 1000, memoryMib: 2048, storageGib: 16 },
    placement: { nodeSelector: { pool } },
  });

before(async () => {
  server = await startDeviceTestServer();
  await server.clients(server.api.adminToken).images.createImage({
    imageId: 'android-14',
    image: { displayName: 'Android 14', containerImage: 'redroid/redroid:14.0.0-latest', archs: ['arm64'] },
  });
  user = server.clients(await server.addTenant('acme'));
});

after(() => server.close());

async function assertWithinCapacity(pool: string) {
  const report = (await allocationReport(server.store.db)).filter((h) => h.id.startsWith(pool));
  for (const h of report) {
    assert.deepEqual(h.allocated, h.devices, `${h.id}: allocated_* equals the sum over its devices`);
    for (const k of ['cpu', 'memory', 'storage', 'devices'] as const) {
      assert.ok(h.allocated[k] <= h.capacity[k], `${h.id} ${k}: ${h.allocated[k]} <= ${h.capacity[k]}`);
    }
  }
  return report;
}

test('100 concurrent single creates fill tight hosts exactly and never overcommit one', async () => {
  // Each host is bound by a different resource: 5 + 6 + 4 + 6 + 6 = 27 phones of 1000m/2048MiB/16GiB.
  await insertHosts(server.store.db, [
    { id: 'race-a', labels: { pool: 'race' }, devices: 5 },
    { id: 'race-b', labels: { pool: 'race' }, vcpu: 6000 },
    { id: 'race-c', labels: { pool: 'race' }, memoryMib: 8192 + 1000 },
    { id: 'race-d', labels: { pool: 'race' }, storageGib: 100 },
    { id: 'race-e', labels: { pool: 'race' }, vcpu: 2000, overcommitCpu: 3 },
  ]);
  const results = await Promise.allSettled(
    Array.from({ length: 100 }, () => user.devices.batchCreateDevices({ requests: [phone('race')] })),
  );
  const created = results.filter((r) => r.status === 'fulfilled');
  const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  for (const r of refused) {
    const err = ConnectError.from(r.reason);
    assert.equal(Code[err.code], 'ResourceExhausted', err.rawMessage);
  }
  assert.equal(created.length, 27);
  const report = await assertWithinCapacity('race-');
  assert.deepEqual(
    report.map((h) => h.devices.devices),
    [5, 6, 4, 6, 6],
  );
  const events = await server.store.db
    .selectFrom('device_event')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  assert.equal(Number(events.n), 27, 'one creation event per device');
});

test('a batch of N where only N-1 fit creates nothing; concurrent batches are all or nothing', async () => {
  await insertHosts(server.store.db, [
    { id: 'batch-a', labels: { pool: 'batch' }, devices: 5 },
    { id: 'batch-b', labels: { pool: 'batch' }, devices: 5 },
  ]);
  const before = await allocationReport(server.store.db);
  const count = async () => (await server.store.db.selectFrom('device').select('id').execute()).length;
  const devicesBefore = await count();
  await assert.rejects(
    user.devices.batchCreateDevices({ requests: Array.from({ length: 11 }, () => phone('batch')) }),
    (e) =>
      ConnectError.from(e).code === Code.ResourceExhausted &&
      /requests\[10\].*slots/.test(ConnectError.from(e).rawMessage),
  );
  assert.equal(await count(), devicesBefore);
  assert.deepEqual(await allocationReport(server.store.db), before);

  await insertHosts(server.store.db, [
    { id: 'batch-c', labels: { pool: 'batch' }, devices: 10 },
    { id: 'batch-d', labels: { pool: 'batch' }, devices: 10 },
    { id: 'batch-e', labels: { pool: 'batch' }, devices: 10 },
    { id: 'batch-f', labels: { pool: 'batch' }, devices: 10 },
  ]);
  // 50 slots, 8 concurrent batches of 10: exactly 5 fit whole.
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, () =>
      user.devices.batchCreateDevices({ requests: Array.from({ length: 10 }, () => phone('batch')) }),
    ),
  );
  const created = results.filter((r) => r.status === 'fulfilled');
  assert.equal(created.length, 5);
  for (const r of results) {
    if (r.status === 'rejected') assert.equal(ConnectError.from(r.reason).code, Code.ResourceExhausted);
  }
  const report = await assertWithinCapacity('batch-');
  assert.equal(
    report.reduce((sum, h) => sum + h.devices.devices, 0),
    50,
  );
});
