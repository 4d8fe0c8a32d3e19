import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { DrainMode, DrainState, HostService, HostState, PowerState } from '@cphone/proto';
import { connectError, startTestApi, type TestApi } from '../api/test-api.js';
import { loadDesiredSet } from '../devices/desired-set.js';
import { insertTestDevice } from '../gateway/testing.js';
import { sessionFleetFeed } from '../placement/fleet-feed.js';
import { Planner } from '../placement/planner.js';
import { allocationReport, insertHosts, TEST_REPLICA } from '../placement/testing.js';
import type { Database, DeviceStateName } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { verifyHostCredential } from './credentials.js';
import { Drainer } from './drainer.js';
import { hostService } from './host-service.js';

let store: TestDatabase<Database>;
let api: TestApi;
let drainer: Drainer;
let planner: Planner;
const gatewayCalls: string[] = [];

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    routes: (router, deps) =>
      router.service(
        HostService,
        hostService({
          ...deps,
          gateway: {
            desiredChanged: (hostId) => gatewayCalls.push(`desired ${hostId}`),
            drain: (hostId, reason) => gatewayCalls.push(`drain ${hostId} ${reason}`),
            disconnect: (hostId) => gatewayCalls.push(`disconnect ${hostId}`),
          },
        }),
      ),
  });
  // Passes are run by hand here (a replica's leader runs them on a timer): reads never advance a drain.
  planner = new Planner({
    ...api.deps,
    desiredChanged: (hostId) => gatewayCalls.push(`desired ${hostId}`),
    feed: sessionFleetFeed(() => store.session()),
  });
  drainer = new Drainer({
    ...api.deps,
    planner,
    isLeader: () => true,
    desiredChanged: (hostId) => gatewayCalls.push(`desired ${hostId}`),
  });
  await api.tenant('t_cust', 'customer', 'platform');
  await store.db
    .insertInto('image')
    .values({
      id: 'img_test',
      tenant_id: null,
      display_name: 'test',
      image_ref: 'redroid:test',
      android_version: '13',
      arches: '["arm64"]',
      required_labels: '{}',
      default_spec: '{}',
      min_vcpu_millicores: 0,
      min_memory_mib: 0,
      min_storage_gib: 0,
      update_time: new Date(),
      delete_time: null,
    })
    .execute();
});

after(async () => {
  await api?.close();
  await planner?.close();
  await store?.close();
});

async function insertDevice(hostId: string, state: DeviceStateName, desired: 'running' | 'stopped') {
  const { deviceId } = await insertTestDevice(store.db, {
    hostId,
    tenantId: 't_cust',
    state,
    desiredPower: desired,
    vcpuMillicores: 1000,
    memoryMib: 2048,
    storageGib: 8,
  });
  return deviceId;
}

/** As a Hello leaves the host: reachable, its stream held by a replica. */
async function markConnected(hostId: string) {
  await store.db
    .updateTable('host')
    .set({ connection: 'ready', gateway_replica: TEST_REPLICA })
    .where('id', '=', hostId)
    .execute();
}

test('enrolling returns the credential once and stores only its hash', async () => {
  const ops = api.client(HostService, await api.token('platform', 'ops'));
  const { host, credential } = await ops.enrollHost({
    name: 'rack1-node01',
    arch: 'arm64',
    labels: { zone: 'rack-1' },
    overcommit: { cpu: 2 },
  });
  assert.ok(host);
  assert.equal(host.state, HostState.PENDING);
  assert.equal(host.overcommit?.cpu, 2);
  assert.equal(host.overcommit?.memory, 1);
  assert.deepEqual(host.labels, { zone: 'rack-1' });
  assert.match(credential, /^hcred_[0-9a-z]+\.cph_[0-9a-z]+$/);
  const rows = await store.db
    .selectFrom('host_credential')
    .selectAll()
    .where('host_id', '=', host.hostId)
    .execute();
  assert.equal(rows.length, 1);
  const secret = credential.split('.')[1] ?? '';
  assert.notEqual(rows[0]?.secret_hash, secret);
  assert.ok(!JSON.stringify(rows).includes(secret), 'the secret is not stored');
  assert.equal(await verifyHostCredential(store.db, host.hostId, credential), true);
  assert.equal(await verifyHostCredential(store.db, host.hostId, `${credential}x`), false);
  assert.equal(await verifyHostCredential(store.db, 'host_other', credential), false);
  const fetched = await ops.getHost({ hostId: host.hostId });
  assert.equal(fetched.host?.name, 'rack1-node01');
});

test('a duplicate name is ALREADY_EXISTS, bad input INVALID_ARGUMENT, non-operators PERMISSION_DENIED', async () => {
  const admin = api.client(HostService, api.adminToken);
  await admin.enrollHost({ name: 'dup-node', arch: 'amd64' });
  await assert.rejects(
    admin.enrollHost({ name: 'dup-node', arch: 'arm64' }),
    connectError(Code.AlreadyExists, /dup-node/),
  );
  await assert.rejects(
    admin.enrollHost({ name: 'x86-node', arch: 'x86' }),
    connectError(Code.InvalidArgument, /arch/),
  );
  await assert.rejects(
    admin.enrollHost({ name: 'oc-node', arch: 'arm64', overcommit: { memory: 0.5 } }),
    connectError(Code.InvalidArgument, /overcommit\.memory/),
  );
  const tenantAdmin = api.client(HostService, await api.token('platform', 'tenant_admin'));
  await assert.rejects(tenantAdmin.listHosts({}), connectError(Code.PermissionDenied));
  const customer = api.client(HostService, await api.token('t_cust', 'tenant_admin'));
  await assert.rejects(
    customer.enrollHost({ name: 'sneaky', arch: 'arm64' }),
    connectError(Code.PermissionDenied),
  );
});

test('a retried enrollment returns the same host and a fresh credential, revoking the unseen one', async () => {
  const admin = api.client(HostService, api.adminToken);
  const first = await admin.enrollHost({ requestId: 'enroll-1', name: 'retry-node', arch: 'arm64' });
  const again = await admin.enrollHost({ requestId: 'enroll-1', name: 'retry-node', arch: 'arm64' });
  assert.equal(again.host?.hostId, first.host?.hostId);
  assert.notEqual(again.credential, first.credential);
  const hostId = first.host?.hostId ?? '';
  assert.equal(await verifyHostCredential(store.db, hostId, first.credential), false);
  assert.equal(await verifyHostCredential(store.db, hostId, again.credential), true);
});

test('list pages by name and filters by state, labels and arch; cordon and uncordon', async () => {
  const admin = api.client(HostService, api.adminToken);
  const a = await admin.enrollHost({ name: 'list-a', arch: 'arm64', labels: { pool: 'blue' } });
  const b = await admin.enrollHost({ name: 'list-b', arch: 'arm64', labels: { pool: 'blue' } });
  await markConnected(a.host?.hostId ?? '');
  await markConnected(b.host?.hostId ?? '');
  const first = await admin.listHosts({ pageSize: 1, labelSelector: { pool: 'blue' } });
  assert.deepEqual(
    first.hosts.map((h) => h.name),
    ['list-a'],
  );
  const second = await admin.listHosts({
    pageSize: 1,
    labelSelector: { pool: 'blue' },
    pageToken: first.nextPageToken,
  });
  assert.deepEqual(
    second.hosts.map((h) => h.name),
    ['list-b'],
  );
  assert.equal(second.nextPageToken, '');
  assert.equal(second.hosts[0]?.state, HostState.READY);
  assert.equal(second.hosts[0]?.connected, true);

  const cordoned = await admin.cordonHost({ hostId: b.host?.hostId ?? '', reason: 'bad fan' });
  assert.equal(cordoned.host?.state, HostState.CORDONED);
  const onlyCordoned = await admin.listHosts({
    states: [HostState.CORDONED],
    labelSelector: { pool: 'blue' },
  });
  assert.deepEqual(
    onlyCordoned.hosts.map((h) => h.name),
    ['list-b'],
  );
  assert.equal((await admin.listHosts({ arch: 'amd64', labelSelector: { pool: 'blue' } })).hosts.length, 0);
  const uncordoned = await admin.uncordonHost({ hostId: b.host?.hostId ?? '' });
  assert.equal(uncordoned.host?.state, HostState.READY);
  assert.equal(uncordoned.host?.cordoned, false);

  const updated = await admin.updateHost({
    host: { hostId: a.host?.hostId ?? '', labels: { pool: 'green' }, overcommit: { cpu: 1.5, memory: 1.2 } },
    updateMask: { paths: ['labels', 'overcommit'] },
  });
  assert.deepEqual(updated.host?.labels, { pool: 'green' });
  assert.equal(updated.host?.overcommit?.cpu, 1.5);
  await assert.rejects(
    admin.updateHost({
      host: { hostId: a.host?.hostId ?? '', name: 'list-b' },
      updateMask: { paths: ['name'] },
    }),
    connectError(Code.AlreadyExists, /list-b/),
  );
  await assert.rejects(admin.getHost({ hostId: 'host_nope' }), connectError(Code.NotFound, /host_nope/));
});

test('a STOP drain stops running devices, reports progress and completes when none runs', async () => {
  const admin = api.client(HostService, api.adminToken);
  const { host } = await admin.enrollHost({ name: 'drain-stop', arch: 'arm64' });
  const hostId = host?.hostId ?? '';
  await markConnected(hostId);
  const running1 = await insertDevice(hostId, 'running', 'running');
  const running2 = await insertDevice(hostId, 'booting', 'running');
  await insertDevice(hostId, 'stopped', 'stopped');
  gatewayCalls.length = 0;

  const started = await admin.drainHost({ hostId, mode: DrainMode.STOP, reason: 'kernel upgrade' });
  assert.equal(started.host?.state, HostState.DRAINING);
  assert.equal(started.host?.cordoned, true);
  assert.equal(started.drainStatus?.state, DrainState.IN_PROGRESS);
  assert.equal(started.drainStatus?.devicesTotal, 3);
  assert.equal(started.drainStatus?.devicesRemaining, 2);
  assert.equal(started.drainStatus?.reason, 'kernel upgrade');
  assert.deepEqual(gatewayCalls, [`desired ${hostId}`, `drain ${hostId} kernel upgrade`]);
  const devices = await store.db
    .selectFrom('device')
    .select(['id', 'desired_power'])
    .where('host_id', '=', hostId)
    .execute();
  assert.ok(devices.every((d) => d.desired_power === 'stopped'));
  const row = await store.db
    .selectFrom('host')
    .select('desired_revision')
    .where('id', '=', hostId)
    .executeTakeFirstOrThrow();
  assert.equal(row.desired_revision, 1);

  const again = await admin.drainHost({ hostId, mode: DrainMode.STOP, reason: 'again' });
  assert.equal(again.drainStatus?.reason, 'kernel upgrade', 'a second call changes nothing');
  assert.equal(gatewayCalls.length, 2);

  await store.db.updateTable('device').set({ state: 'stopped' }).where('id', '=', running1).execute();
  const half = await admin.getDrainStatus({ hostId });
  assert.equal(half.drainStatus?.devicesRemaining, 1);
  assert.equal(half.drainStatus?.state, DrainState.IN_PROGRESS);
  await store.db.updateTable('device').set({ state: 'stopped' }).where('id', '=', running2).execute();
  const waiting = await admin.getDrainStatus({ hostId });
  assert.equal(waiting.drainStatus?.devicesRemaining, 0);
  assert.equal(waiting.drainStatus?.state, DrainState.IN_PROGRESS, 'a read ends nothing: the drainer does');
  assert.deepEqual((await drainer.pass()).ended, [{ hostId, state: 'completed' }]);
  assert.deepEqual((await drainer.pass()).ended, [], 'a drain ends once');
  const done = await admin.getDrainStatus({ hostId });
  assert.equal(done.drainStatus?.state, DrainState.COMPLETED);
  assert.equal(done.drainStatus?.devicesRemaining, 0);
  assert.ok(done.drainStatus?.endTime);
  const after = await admin.getHost({ hostId });
  assert.equal(after.host?.state, HostState.CORDONED, 'a drained host stays cordoned');
  const placementView = await store.db
    .selectFrom('host')
    .select('drain_mode')
    .where('id', '=', hostId)
    .executeTakeFirstOrThrow();
  assert.equal(placementView.drain_mode, null, 'the scheduler no longer sees a drain in progress');
});

test('uncordoning cancels a drain in progress; a cancelled MIGRATE drain lets its phones run where they are', async () => {
  const admin = api.client(HostService, api.adminToken);
  const { host } = await admin.enrollHost({ name: 'drain-cancel', arch: 'arm64' });
  const hostId = host?.hostId ?? '';
  await markConnected(hostId);
  const deviceId = await insertDevice(hostId, 'running', 'running');
  await admin.drainHost({ hostId, reason: 'maintenance', timeout: { seconds: 3600n } });
  const status = await admin.getDrainStatus({ hostId });
  assert.equal(status.drainStatus?.mode, DrainMode.STOP, 'UNSPECIFIED means STOP');
  assert.ok(status.drainStatus?.deadline);
  const uncordoned = await admin.uncordonHost({ hostId });
  assert.equal(uncordoned.host?.state, HostState.READY);
  assert.equal(uncordoned.host?.drain?.state, DrainState.CANCELLED);

  // STOP leaves its phones stopped; set this one to run again, then drain it with MIGRATE.
  await store.db.updateTable('device').set({ desired_power: 'running' }).where('id', '=', deviceId).execute();
  gatewayCalls.length = 0;
  const migrating = await admin.drainHost({ hostId, mode: DrainMode.MIGRATE });
  assert.equal(migrating.drainStatus?.mode, DrainMode.MIGRATE);
  assert.equal(migrating.drainStatus?.state, DrainState.IN_PROGRESS);
  assert.equal(migrating.drainStatus?.devicesRemaining, 1, 'still running: it is stopped before it moves');
  assert.deepEqual(gatewayCalls, [`desired ${hostId}`, `drain ${hostId} `]);
  const power = () =>
    store.db
      .selectFrom('device')
      .select('desired_power')
      .where('id', '=', deviceId)
      .executeTakeFirstOrThrow();
  // The drain holds the host's phones stopped without touching their own power (or their quota).
  assert.equal((await power()).desired_power, 'running');
  const held = await loadDesiredSet(store.db, hostId);
  assert.equal(held?.devices[0]?.powerState, PowerState.STOPPED, 'the agent is told to stop it');
  const cancelled = await admin.uncordonHost({ hostId });
  assert.equal(cancelled.host?.drain?.state, DrainState.CANCELLED);
  assert.equal((await power()).desired_power, 'running');
  const released = await loadDesiredSet(store.db, hostId);
  assert.equal(released?.devices[0]?.powerState, PowerState.RUNNING, 'it runs again where it is');
  assert.ok((released?.revision ?? 0n) > (held?.revision ?? 0n));
  assert.equal(gatewayCalls.at(-1), `desired ${hostId}`);
});

test('revoking a credential refuses it afterwards and closes the stream; rotation issues a new one', async () => {
  const admin = api.client(HostService, api.adminToken);
  const { host, credential } = await admin.enrollHost({ name: 'revoke-node', arch: 'arm64' });
  const hostId = host?.hostId ?? '';
  gatewayCalls.length = 0;
  const revoked = await admin.revokeHostCredential({ hostId });
  assert.equal(revoked.credential, '');
  assert.equal(revoked.host?.state, HostState.REVOKED);
  assert.equal(await verifyHostCredential(store.db, hostId, credential), false);
  assert.deepEqual(gatewayCalls, [`disconnect ${hostId}`]);
  const rotated = await admin.revokeHostCredential({ hostId, issueNew: true });
  assert.equal(await verifyHostCredential(store.db, hostId, rotated.credential), true);
  assert.equal(rotated.host?.state, HostState.PENDING);
});

test('deleting a host with devices is FAILED_PRECONDITION unless forced; forced devices become lost, then are re-placed', async () => {
  const admin = api.client(HostService, api.adminToken);
  const { host } = await admin.enrollHost({ name: 'delete-node', arch: 'arm64' });
  const hostId = host?.hostId ?? '';
  const deviceId = await insertDevice(hostId, 'running', 'running');
  await assert.rejects(admin.deleteHost({ hostId }), connectError(Code.FailedPrecondition, /1 device/));
  await admin.deleteHost({ hostId, force: true });
  await assert.rejects(admin.getHost({ hostId }), connectError(Code.NotFound));
  const device = await store.db
    .selectFrom('device')
    .select(['state', 'host_id'])
    .where('id', '=', deviceId)
    .executeTakeFirstOrThrow();
  assert.deepEqual(device, { state: 'lost', host_id: null });
  // The leader's drainer places it again wherever it fits, by the rules it was created with.
  await insertHosts(store.db, [{ id: 'replace-target', labels: {} }]);
  const pass = await drainer.pass();
  assert.deepEqual(
    pass.moved.filter((m) => m.deviceId === deviceId),
    [{ deviceId, from: '', to: 'replace-target' }],
  );
  const replaced = await store.db
    .selectFrom('device')
    .select(['state', 'host_id', 'state_reason'])
    .where('id', '=', deviceId)
    .executeTakeFirstOrThrow();
  assert.deepEqual(replaced, { state: 'scheduled', host_id: 'replace-target', state_reason: 'REPLACED' });
  const [target] = (await allocationReport(store.db)).filter((h) => h.id === 'replace-target');
  assert.deepEqual(target?.allocated, target?.devices, 'the ledger took it in');
  await store.db.updateTable('host').set({ cordoned: true }).where('id', '=', 'replace-target').execute();

  const empty = await admin.enrollHost({ name: 'delete-empty', arch: 'arm64' });
  await admin.deleteHost({ hostId: empty.host?.hostId ?? '' });
  assert.equal(
    await store.db
      .selectFrom('host_credential')
      .select('id')
      .where('host_id', '=', empty.host?.hostId ?? '')
      .executeTakeFirst(),
    undefined,
  );
});

test('ExplainPlacement gives every host a verdict, for operators only', async () => {
  const admin = api.client(HostService, api.adminToken);
  const { host } = await admin.enrollHost({ name: 'explain-node', arch: 'arm64' });
  await markConnected(host?.hostId ?? '');
  const explained = await admin.explainPlacement({
    tenantId: 't_cust',
    spec: { imageId: 'img_test', vcpuMillicores: 2000, memoryMib: 2048, storageGib: 8 },
    count: 1,
  });
  const verdict = explained.hosts.find((h) => h.hostId === host?.hostId);
  assert.ok(verdict, 'the new host is explained');
  assert.equal(verdict.feasible, false, 'it has reported no capacity yet');
  assert.ok(verdict.filterFailures.length > 0);
  assert.equal(explained.feasible, false);
  const customer = api.client(HostService, await api.token('t_cust', 'tenant_admin'));
  await assert.rejects(
    customer.explainPlacement({ spec: { imageId: 'img_test' } }),
    connectError(Code.PermissionDenied),
  );
});
