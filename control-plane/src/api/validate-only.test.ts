// validate_only (AIP-163) on every request that takes it, over the real API and store: a dry run
// answers what the real call would and leaves every table as it was (audit log included) and every
// agent untold; a refused dry run fails with the real call's code and message; a dry run never
// uses its request_id.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  ApiKeyService,
  type CreateDeviceRequest,
  CreateDeviceRequestSchema,
  DeviceService,
  DeviceState,
  DrainMode,
  HostService,
  ImageService,
  PowerState,
  Role,
  TenantKind,
  TenantService,
  TenantState,
} from '@cphone/proto';
import { sql } from 'kysely';
import { deviceService } from '../devices/device-service.js';
import { createStubGateway } from '../gateway/testing.js';
import { hostService } from '../hosts/host-service.js';
import { imageService } from '../images/image-service.js';
import { sessionFleetFeed } from '../placement/fleet-feed.js';
import { Planner } from '../placement/planner.js';
import { insertHosts } from '../placement/testing.js';
import type { Database } from '../store/schema.js';
import type { TestDatabase } from '../store/test-database.js';
import { tenantService } from '../tenants/tenant-service.js';
import { createTestStore } from '../testing.js';
import { apiKeyService } from './api-key-service.js';
import { startTestApi, type TestApi } from './test-api.js';

const IMAGE = 'android-14';

let store: TestDatabase<Database>;
let api: TestApi;
let planner: Planner;
const gateway = createStubGateway();
/** Tokens: a tenant user and a tenant admin of reseller acme, an admin of its customer acme-c. */
let user = '';
let acmeAdmin = '';
let customerAdmin = '';

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    routes: (router, base) => {
      planner = new Planner({
        ...base,
        desiredChanged: (id) => gateway.desiredChanged(id),
        feed: sessionFleetFeed(() => store.session()),
      });
      const deps = { ...base, gateway, planner };
      router.service(DeviceService, deviceService(deps));
      router.service(ImageService, imageService(deps));
      router.service(HostService, hostService(deps));
      router.service(TenantService, tenantService(deps));
      router.service(ApiKeyService, apiKeyService(deps));
    },
  });
  await api.tenant('acme', 'reseller', 'platform');
  await api.tenant('acme-c', 'customer', 'acme');
  await api.tenant('globex', 'reseller', 'platform');
  user = await api.token('acme', 'tenant_user');
  acmeAdmin = await api.token('acme', 'tenant_admin');
  customerAdmin = await api.token('acme-c', 'tenant_admin');
  await api.client(ImageService, api.adminToken).createImage({
    imageId: IMAGE,
    image: {
      displayName: 'Android 14',
      containerImage: 'redroid/redroid:14.0.0_64only-latest',
      archs: ['arm64'],
      defaultSpec: { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 },
      minMemoryMib: 1024,
    },
  });
  await insertHosts(store.db, [
    { id: 'make-1', labels: { pool: 'make' }, devices: 4 },
    { id: 'drain-1', labels: { pool: 'drain' } },
    { id: 'drain-2', labels: { pool: 'drain' }, devices: 1 },
  ]);
});

after(async () => {
  await api?.close();
  await planner?.close();
  await store?.close();
});

const TABLES: readonly (keyof Database)[] = [
  'tenant',
  'quota',
  'api_key',
  'host',
  'host_credential',
  'image',
  'device',
  'device_event',
  'drain_device',
  'idempotency_key',
  'audit_log',
  'stream_session',
];

/**
 * Every row of every table a call could write, audit log included (its queue flushed first). An
 * API key's last use is the authentication's, not the call's, so it is left out.
 */
async function snapshot(): Promise<Record<string, string[]>> {
  await api.deps.audit.flush();
  const out: Record<string, string[]> = {};
  for (const table of TABLES) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(store.db);
    out[table] = rows.rows
      .map(({ last_used_time: _, ...row }) =>
        JSON.stringify(row, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      )
      .sort();
  }
  return out;
}

/** Runs a dry run and asserts that it left the store and the agents as they were. */
async function dry<T>(call: () => Promise<T>): Promise<T> {
  const before = await snapshot();
  const told = [gateway.desired.length, gateway.drains.length, gateway.revocations.length];
  let result: T | undefined;
  let error: unknown;
  try {
    result = await call();
  } catch (e) {
    error = e;
  }
  assert.deepEqual(await snapshot(), before, 'a dry run leaves every table as it was');
  assert.deepEqual(
    [gateway.desired.length, gateway.drains.length, gateway.revocations.length],
    told,
    'a dry run tells no agent',
  );
  if (error) throw error;
  return result as T;
}

/** The dry run and then the real call fail alike: same code, same message. */
async function refusedAlike(call: (validateOnly: boolean) => Promise<unknown>, code: Code): Promise<void> {
  const failure = async (validateOnly: boolean) => {
    try {
      await (validateOnly ? dry(() => call(true)) : call(false));
    } catch (error) {
      return ConnectError.from(error);
    }
    assert.fail(`validate_only=${validateOnly} succeeded`);
  };
  const dryError = await failure(true);
  const realError = await failure(false);
  assert.equal(Code[dryError.code], Code[code], dryError.rawMessage);
  assert.equal(Code[realError.code], Code[code], realError.rawMessage);
  assert.equal(dryError.rawMessage, realError.rawMessage);
}

/** A create on hosts labeled pool=<pool>. */
function phone(
  pool: string,
  init: {
    displayName?: string;
    spec?: { imageId: string; memoryMib?: number };
    placement?: { hostId: string };
  } = {},
): CreateDeviceRequest {
  return create(CreateDeviceRequestSchema, {
    spec: { imageId: IMAGE, vcpuMillicores: 1000, memoryMib: 2048, storageGib: 16 },
    placement: { nodeSelector: { pool } },
    ...init,
  });
}

test('a BatchCreateDevices dry run places, admits and creates nothing', async () => {
  const devices = api.client(DeviceService, user);
  const answer = await dry(() =>
    devices.batchCreateDevices({
      validateOnly: true,
      requests: [phone('make', { displayName: 'alpha' }), phone('make')],
    }),
  );
  assert.equal(answer.devices.length, 2);
  const [a, b] = answer.devices;
  assert.ok(a && b);
  assert.equal(a.deviceId, '', 'no id before the real call');
  assert.equal(a.displayName, 'alpha');
  assert.equal(b.displayName, '', 'a name derived from the id is not known either');
  assert.equal(a.hostId, 'make-1', 'the host it would be placed on');
  assert.equal(a.state, DeviceState.SCHEDULED);
  assert.equal(a.tenantId, 'acme');
  assert.equal(a.spec?.vcpuMillicores, 1000);

  // The real call afterwards places where the dry run said.
  const real = await devices.batchCreateDevices({ requests: [phone('make', { displayName: 'alpha' })] });
  assert.equal(real.devices[0]?.hostId, 'make-1');
  assert.ok(real.devices[0]?.deviceId);
});

test('a BatchCreateDevices dry run is refused exactly as the real call', async () => {
  const devices = api.client(DeviceService, user);
  const batch =
    (requests: CreateDeviceRequest[], extra: { tenantId?: string } = {}) =>
    (validateOnly: boolean) =>
      devices.batchCreateDevices({ validateOnly, requests, ...extra });
  // A bad field.
  await refusedAlike(
    batch([phone('make', { spec: { imageId: IMAGE, memoryMib: 512 } })]),
    Code.InvalidArgument,
  );
  // Another tenant.
  await refusedAlike(batch([phone('make')], { tenantId: 'globex' }), Code.NotFound);
  // Pinning to a host is for operators.
  await refusedAlike(batch([phone('make', { placement: { hostId: 'make-1' } })]), Code.PermissionDenied);
  // No host fits.
  await refusedAlike(batch([phone('nowhere')]), Code.ResourceExhausted);
  // The fleet is short for the whole batch (make-1 holds 4 devices; one is taken).
  await refusedAlike(
    batch([phone('make'), phone('make'), phone('make'), phone('make')]),
    Code.ResourceExhausted,
  );
  // A quota of an ancestor: acme may hold 2 devices and holds 1; its customer asks 2.
  await api.client(TenantService, api.adminToken).setQuota({
    quota: { tenantId: 'acme', maxDevices: 2 },
    updateMask: { paths: ['max_devices'] },
  });
  const customer = api.client(DeviceService, customerAdmin);
  await refusedAlike(
    (validateOnly) => customer.batchCreateDevices({ validateOnly, requests: [phone('make'), phone('make')] }),
    Code.ResourceExhausted,
  );
  await api.client(TenantService, api.adminToken).setQuota({
    quota: { tenantId: 'acme' },
    updateMask: { paths: ['max_devices'] },
  });
});

test('a dry run with a request_id leaves the key to the real call', async () => {
  const devices = api.client(DeviceService, user);
  const request = { requestId: 'dry-key-1', requests: [phone('make', { displayName: 'keyed' })] };
  const first = await dry(() => devices.batchCreateDevices({ ...request, validateOnly: true }));
  assert.equal(first.devices[0]?.deviceId, '');
  const real = await devices.batchCreateDevices(request);
  const id = real.devices[0]?.deviceId ?? '';
  assert.ok(id, 'the real call creates');
  const listed = await devices.listDevices({});
  assert.ok(listed.devices.some((d) => d.deviceId === id));
  // Once used, a dry run answers as a retry would: the devices the key made.
  const replay = await dry(() => devices.batchCreateDevices({ ...request, validateOnly: true }));
  assert.equal(replay.devices[0]?.deviceId, id);
  await refusedAlike(
    (validateOnly) =>
      devices.batchCreateDevices({ requestId: 'dry-key-1', validateOnly, requests: [phone('make')] }),
    Code.InvalidArgument,
  );

  const tenants = api.client(TenantService, acmeAdmin);
  const tenantRequest = { requestId: 'dry-key-2', kind: TenantKind.CUSTOMER, displayName: 'Keyed' };
  const made = await dry(() => tenants.createTenant({ ...tenantRequest, validateOnly: true }));
  assert.equal(made.tenant?.tenantId, '');
  assert.equal(made.tenant?.displayName, 'Keyed');
  assert.ok((await tenants.createTenant(tenantRequest)).tenant?.tenantId);
});

test('UpdateDevice, StartDevice, StopDevice and DeleteDevice dry runs', async () => {
  const devices = api.client(DeviceService, user);
  const [running] = (
    await devices.batchCreateDevices({ requests: [phone('make', { displayName: 'worker' })] })
  ).devices;
  assert.ok(running);
  const id = running.deviceId;

  const updated = await dry(() =>
    devices.updateDevice({
      validateOnly: true,
      device: { deviceId: id, displayName: 'renamed', labels: { team: 'qa' } },
      updateMask: { paths: ['display_name', 'labels'] },
    }),
  );
  assert.equal(updated.device?.displayName, 'renamed');
  assert.deepEqual(updated.device?.labels, { team: 'qa' });
  assert.equal((await devices.getDevice({ deviceId: id })).device?.displayName, 'worker');

  const stopped = await dry(() => devices.stopDevice({ deviceId: id, validateOnly: true }));
  assert.equal(stopped.device?.desiredPowerState, PowerState.STOPPED);
  const deleting = await dry(() => devices.deleteDevice({ deviceId: id, validateOnly: true }));
  assert.equal(deleting.device?.state, DeviceState.DELETING);
  await refusedAlike(
    (validateOnly) => devices.startDevice({ deviceId: id, validateOnly }),
    Code.FailedPrecondition,
  );
  const other = api.client(DeviceService, await api.token('globex', 'tenant_user'));
  await refusedAlike((validateOnly) => other.stopDevice({ deviceId: id, validateOnly }), Code.NotFound);
  await refusedAlike(
    (validateOnly) =>
      devices.updateDevice({
        validateOnly,
        device: { deviceId: id, displayName: 'x'.repeat(64) },
        updateMask: { paths: ['display_name'] },
      }),
    Code.InvalidArgument,
  );

  // A start is admitted by the quota of the tenant and of every ancestor.
  await devices.stopDevice({ deviceId: id });
  const started = await dry(() => devices.startDevice({ deviceId: id, validateOnly: true }));
  assert.equal(started.device?.desiredPowerState, PowerState.RUNNING);
  await api.client(TenantService, api.adminToken).setQuota({
    quota: { tenantId: 'acme', maxRunningDevices: 0 },
    updateMask: { paths: ['max_running_devices'] },
  });
  await refusedAlike(
    (validateOnly) => devices.startDevice({ deviceId: id, validateOnly }),
    Code.ResourceExhausted,
  );
  await api.client(TenantService, api.adminToken).setQuota({
    quota: { tenantId: 'acme' },
    updateMask: { paths: ['max_running_devices'] },
  });
});

test('EnrollHost, UpdateHost and CordonHost dry runs', async () => {
  const hosts = api.client(HostService, api.adminToken);
  const enrolled = await dry(() =>
    hosts.enrollHost({ validateOnly: true, requestId: 'dry-host', name: 'rack9-node1', arch: 'arm64' }),
  );
  assert.equal(enrolled.host?.hostId, '');
  assert.equal(enrolled.host?.name, 'rack9-node1');
  assert.equal(enrolled.credential, '', 'no credential is issued');
  const real = await hosts.enrollHost({ requestId: 'dry-host', name: 'rack9-node1', arch: 'arm64' });
  assert.ok(real.host?.hostId && real.credential, 'the key was left to the real call');
  await refusedAlike(
    (validateOnly) => hosts.enrollHost({ validateOnly, name: 'rack9-node1', arch: 'arm64' }),
    Code.AlreadyExists,
  );
  await refusedAlike(
    (validateOnly) => hosts.enrollHost({ validateOnly, name: 'Bad Name!', arch: 'arm64' }),
    Code.InvalidArgument,
  );
  const asUser = api.client(HostService, user);
  await refusedAlike(
    (validateOnly) => asUser.enrollHost({ validateOnly, name: 'rack9-node2', arch: 'arm64' }),
    Code.PermissionDenied,
  );

  const updated = await dry(() =>
    hosts.updateHost({
      validateOnly: true,
      host: { hostId: 'make-1', labels: { pool: 'make', zone: 'z1' } },
      updateMask: { paths: ['labels'] },
    }),
  );
  assert.deepEqual(updated.host?.labels, { pool: 'make', zone: 'z1' });
  await refusedAlike(
    (validateOnly) =>
      hosts.updateHost({
        validateOnly,
        host: { hostId: 'make-1', name: 'rack9-node1' },
        updateMask: { paths: ['name'] },
      }),
    Code.AlreadyExists,
  );
  const cordoned = await dry(() => hosts.cordonHost({ hostId: 'make-1', validateOnly: true }));
  assert.equal(cordoned.host?.cordoned, true);
  assert.equal((await hosts.getHost({ hostId: 'make-1' })).host?.cordoned, false);
  await refusedAlike(
    (validateOnly) => hosts.cordonHost({ hostId: 'no-such-host', validateOnly }),
    Code.NotFound,
  );
});

test('a DrainHost dry run says where each device would go and which fit nowhere', async () => {
  const devices = api.client(DeviceService, user);
  await api.client(HostService, api.adminToken).cordonHost({ hostId: 'drain-2' });
  const made = await devices.batchCreateDevices({ requests: [phone('drain'), phone('drain')] });
  assert.deepEqual(
    made.devices.map((d) => d.hostId),
    ['drain-1', 'drain-1'],
  );
  const hosts = api.client(HostService, api.adminToken);
  await hosts.uncordonHost({ hostId: 'drain-2' });
  const answer = await dry(() =>
    hosts.drainHost({ hostId: 'drain-1', mode: DrainMode.MIGRATE, reason: 'kernel', validateOnly: true }),
  );
  assert.equal(answer.drainStatus?.devicesTotal, 2);
  assert.equal(answer.drainStatus?.mode, DrainMode.MIGRATE);
  assert.equal(answer.host?.cordoned, true);
  const ids = made.devices.map((d) => d.deviceId).sort();
  assert.deepEqual(
    answer.movePreviews.map((p) => p.deviceId),
    ids,
  );
  // drain-2 has one slot: the first device fits there, the second nowhere.
  assert.equal(answer.movePreviews[0]?.targetHostId, 'drain-2');
  assert.equal(answer.movePreviews[0]?.failure, '');
  assert.equal(answer.movePreviews[1]?.targetHostId, '');
  assert.match(answer.movePreviews[1]?.failure ?? '', /slots|devices|fits/i);

  const stop = await dry(() =>
    hosts.drainHost({ hostId: 'drain-1', mode: DrainMode.STOP, validateOnly: true }),
  );
  assert.equal(stop.drainStatus?.mode, DrainMode.STOP);
  assert.deepEqual(stop.movePreviews, []);
  await refusedAlike(
    (validateOnly) => hosts.drainHost({ hostId: 'drain-1', mode: 7 as DrainMode, validateOnly }),
    Code.InvalidArgument,
  );
});

test('CreateTenant, UpdateTenant and SetQuota dry runs', async () => {
  const tenants = api.client(TenantService, acmeAdmin);
  const made = await dry(() =>
    tenants.createTenant({ validateOnly: true, kind: TenantKind.CUSTOMER, displayName: 'Dry Customer' }),
  );
  assert.equal(made.tenant?.tenantId, '');
  assert.equal(made.tenant?.parentTenantId, 'acme');
  await refusedAlike(
    (validateOnly) => tenants.createTenant({ validateOnly, kind: TenantKind.RESELLER, displayName: 'Sub' }),
    Code.InvalidArgument,
  );
  await refusedAlike(
    (validateOnly) => tenants.createTenant({ validateOnly, kind: TenantKind.CUSTOMER, displayName: ' ' }),
    Code.InvalidArgument,
  );
  await refusedAlike(
    (validateOnly) =>
      api
        .client(TenantService, user)
        .createTenant({ validateOnly, kind: TenantKind.CUSTOMER, displayName: 'By a user' }),
    Code.PermissionDenied,
  );

  // Suspending a tenant with a running phone: the dry run stops nothing and tells no agent.
  const platform = api.client(TenantService, api.adminToken);
  const suspended = await dry(() =>
    platform.updateTenant({
      validateOnly: true,
      tenant: { tenantId: 'acme', state: TenantState.SUSPENDED },
      updateMask: { paths: ['state'] },
    }),
  );
  assert.equal(suspended.tenant?.state, TenantState.SUSPENDED);
  await refusedAlike(
    (validateOnly) =>
      tenants.updateTenant({
        validateOnly,
        tenant: { tenantId: 'globex', displayName: 'x' },
        updateMask: { paths: ['display_name'] },
      }),
    Code.NotFound,
  );

  const quota = await dry(() =>
    platform.setQuota({
      validateOnly: true,
      quota: { tenantId: 'acme', maxDevices: 50 },
      updateMask: { paths: ['max_devices'] },
    }),
  );
  assert.equal(quota.quota?.maxDevices, 50);
  await platform.setQuota({
    quota: { tenantId: 'acme', maxDevices: 10 },
    updateMask: { paths: ['max_devices'] },
  });
  // A child's limit never exceeds its parent's.
  await refusedAlike(
    (validateOnly) =>
      tenants.setQuota({
        validateOnly,
        quota: { tenantId: 'acme-c', maxDevices: 11 },
        updateMask: { paths: ['max_devices'] },
      }),
    Code.InvalidArgument,
  );
  await refusedAlike(
    (validateOnly) =>
      tenants.setQuota({
        validateOnly,
        quota: { tenantId: 'acme', maxDevices: 100 },
        updateMask: { paths: ['max_devices'] },
      }),
    Code.PermissionDenied,
  );
  await platform.setQuota({ quota: { tenantId: 'acme' }, updateMask: { paths: ['max_devices'] } });
});

test('CreateApiKey dry runs show no secret and make no key', async () => {
  const keys = api.client(ApiKeyService, acmeAdmin);
  const answer = await dry(() =>
    keys.createApiKey({
      validateOnly: true,
      requestId: 'dry-api-key',
      displayName: 'ci',
      role: Role.TENANT_USER,
    }),
  );
  assert.equal(answer.apiKey?.apiKeyId, '');
  assert.equal(answer.apiKey?.secretPrefix, '');
  assert.equal(answer.apiKey?.displayName, 'ci');
  assert.equal(answer.apiKey?.tenantId, 'acme');
  assert.equal(answer.secret, '');
  const real = await keys.createApiKey({
    requestId: 'dry-api-key',
    displayName: 'ci',
    role: Role.TENANT_USER,
  });
  assert.ok(real.secret, 'the key was left to the real call');
  await refusedAlike(
    (validateOnly) => keys.createApiKey({ validateOnly, displayName: 'ops', role: Role.OPS }),
    Code.PermissionDenied,
  );
  await refusedAlike(
    (validateOnly) =>
      keys.createApiKey({ validateOnly, tenantId: 'globex', displayName: 'x', role: Role.TENANT_USER }),
    Code.NotFound,
  );
});

test('CreateImage and UpdateImage dry runs', async () => {
  const images = api.client(ImageService, acmeAdmin);
  const image = {
    displayName: 'Acme 13',
    containerImage: 'redroid/redroid:13.0.0-latest',
    archs: ['arm64'],
    defaultSpec: { vcpuMillicores: 2000, memoryMib: 4096, storageGib: 32 },
  };
  const generated = await dry(() => images.createImage({ validateOnly: true, image }));
  assert.equal(generated.image?.imageId, '');
  assert.equal(generated.image?.displayName, 'Acme 13');
  const named = await dry(() => images.createImage({ validateOnly: true, imageId: 'acme-13', image }));
  assert.equal(named.image?.imageId, 'acme-13');
  await refusedAlike(
    (validateOnly) =>
      api.client(ImageService, user).createImage({ validateOnly, imageId: 'by-a-user', image }),
    Code.PermissionDenied,
  );
  await refusedAlike(
    (validateOnly) => images.createImage({ validateOnly, imageId: 'Bad_Id', image }),
    Code.InvalidArgument,
  );
  await images.createImage({ imageId: 'acme-13', image });
  await refusedAlike(
    (validateOnly) => images.createImage({ validateOnly, imageId: 'acme-13', image }),
    Code.AlreadyExists,
  );
  const updated = await dry(() =>
    images.updateImage({
      validateOnly: true,
      image: { imageId: 'acme-13', displayName: 'Acme 13 (old)' },
      updateMask: { paths: ['display_name'] },
    }),
  );
  assert.equal(updated.image?.displayName, 'Acme 13 (old)');
  await refusedAlike(
    (validateOnly) =>
      images.updateImage({
        validateOnly,
        image: { imageId: IMAGE, displayName: 'mine' },
        updateMask: { paths: ['display_name'] },
      }),
    Code.PermissionDenied,
  );
});

test('a real call is audited, its dry run is not', async () => {
  const count = async () => {
    await api.deps.audit.flush();
    const row = await store.db
      .selectFrom('audit_log')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('method', '=', 'HostService/CordonHost')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };
  const hosts = api.client(HostService, api.adminToken);
  const before = await count();
  await hosts.cordonHost({ hostId: 'make-1', validateOnly: true });
  assert.equal(await count(), before);
  await hosts.cordonHost({ hostId: 'make-1' });
  assert.equal(await count(), before + 1);
});
