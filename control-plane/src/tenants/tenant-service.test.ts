import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { QuotaPeriod, TenantKind, TenantService } from '@cphone/proto';
import { connectError, startTestApi, type TestApi } from '../api/test-api.js';
import { insertTestDevice } from '../gateway/testing.js';
import type { Database } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { tenantService } from './tenant-service.js';

let store: TestDatabase<Database>;
let api: TestApi;
let reseller1 = '';
let reseller2 = '';
let customer1 = '';
let customer2 = '';
let reseller1Admin = '';
let customer1Admin = '';

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    routes: (router, deps) => router.service(TenantService, tenantService(deps)),
  });
});

after(async () => {
  await api?.close();
  await store?.close();
});

async function insertDevice(tenantId: string, desired: 'running' | 'stopped') {
  await insertTestDevice(store.db, {
    hostId: null,
    tenantId,
    state: desired === 'running' ? 'running' : 'stopped',
    desiredPower: desired,
    vcpuMillicores: 2000,
    memoryMib: 4096,
    storageGib: 8,
  });
}

test('platform admins create resellers, reseller admins create customers, kinds follow the tree', async () => {
  const platform = api.client(TenantService, api.adminToken);
  const r1 = await platform.createTenant({
    kind: TenantKind.RESELLER,
    displayName: 'Reseller One',
    labels: { crm: 'r-1' },
  });
  reseller1 = r1.tenant?.tenantId ?? '';
  assert.equal(r1.tenant?.parentTenantId, 'platform');
  assert.deepEqual(r1.tenant?.labels, { crm: 'r-1' });
  reseller2 =
    (await platform.createTenant({ kind: TenantKind.RESELLER, displayName: 'Reseller Two' })).tenant
      ?.tenantId ?? '';
  customer2 =
    (await platform.createTenant({ parentTenantId: reseller2, kind: TenantKind.CUSTOMER, displayName: 'C2' }))
      .tenant?.tenantId ?? '';

  reseller1Admin = await api.token(reseller1, 'tenant_admin');
  const reseller = api.client(TenantService, reseller1Admin);
  const c1 = await reseller.createTenant({
    requestId: 'c1',
    kind: TenantKind.CUSTOMER,
    displayName: 'Customer One',
  });
  customer1 = c1.tenant?.tenantId ?? '';
  assert.equal(c1.tenant?.parentTenantId, reseller1);
  const retried = await reseller.createTenant({
    requestId: 'c1',
    kind: TenantKind.CUSTOMER,
    displayName: 'Customer One',
  });
  assert.equal(retried.tenant?.tenantId, customer1, 'a retry returns the same tenant');

  await assert.rejects(
    reseller.createTenant({ kind: TenantKind.RESELLER, displayName: 'sub-reseller' }),
    connectError(Code.InvalidArgument, /kind/),
  );
  await assert.rejects(
    reseller.createTenant({ parentTenantId: 'platform', kind: TenantKind.CUSTOMER, displayName: 'x' }),
    connectError(Code.NotFound, /platform/),
  );
  customer1Admin = await api.token(customer1, 'tenant_admin');
  await assert.rejects(
    api.client(TenantService, customer1Admin).createTenant({ kind: TenantKind.CUSTOMER, displayName: 'x' }),
    connectError(Code.InvalidArgument, /customer tenant cannot have/),
  );
  const platformTenantAdmin = api.client(TenantService, await api.token('platform', 'tenant_admin'));
  await assert.rejects(
    platformTenantAdmin.createTenant({ kind: TenantKind.RESELLER, displayName: 'x' }),
    connectError(Code.PermissionDenied),
  );
  const user = api.client(TenantService, await api.token(reseller1, 'tenant_user'));
  await assert.rejects(
    user.createTenant({ kind: TenantKind.CUSTOMER, displayName: 'x' }),
    connectError(Code.PermissionDenied),
  );
});

test('a reseller sees its customers, not its siblings; a customer does not see its reseller', async () => {
  const reseller = api.client(TenantService, reseller1Admin);
  const children = await reseller.listTenants({});
  assert.deepEqual(
    children.tenants.map((t) => t.tenantId),
    [customer1],
  );
  await assert.rejects(
    reseller.getTenant({ tenantId: reseller2 }),
    connectError(Code.NotFound, new RegExp(reseller2)),
  );
  await assert.rejects(reseller.getTenant({ tenantId: customer2 }), connectError(Code.NotFound));
  await assert.rejects(reseller.listTenants({ parentTenantId: reseller2 }), connectError(Code.NotFound));
  const customer = api.client(TenantService, customer1Admin);
  assert.equal((await customer.getTenant({})).tenant?.tenantId, customer1);
  await assert.rejects(customer.getTenant({ tenantId: reseller1 }), connectError(Code.NotFound));

  const platform = api.client(TenantService, api.adminToken);
  const all = await platform.listTenants({ recursive: true, kind: TenantKind.CUSTOMER });
  assert.deepEqual(all.tenants.map((t) => t.tenantId).sort(), [customer1, customer2].sort());
  const first = await platform.listTenants({ pageSize: 1 });
  const second = await platform.listTenants({ pageSize: 1, pageToken: first.nextPageToken });
  assert.deepEqual(
    [...first.tenants, ...second.tenants].map((t) => t.tenantId),
    [reseller1, reseller2],
  );
  assert.equal(second.nextPageToken, '');
});

test('update changes the named fields only', async () => {
  const reseller = api.client(TenantService, reseller1Admin);
  const updated = await reseller.updateTenant({
    tenant: { tenantId: customer1, displayName: 'Customer One Ltd', labels: { ignored: 'yes' } },
    updateMask: { paths: ['display_name'] },
  });
  assert.equal(updated.tenant?.displayName, 'Customer One Ltd');
  assert.deepEqual(updated.tenant?.labels, {});
  await assert.rejects(
    reseller.updateTenant({ tenant: { tenantId: customer1 }, updateMask: { paths: ['state'] } }),
    connectError(Code.InvalidArgument, /state/),
  );
  await assert.rejects(
    reseller.updateTenant({
      tenant: { tenantId: customer2, displayName: 'mine now' },
      updateMask: { paths: ['display_name'] },
    }),
    connectError(Code.NotFound),
  );
});

test("quotas: a child's limit may not exceed an ancestor's; only ancestors set them", async () => {
  const platform = api.client(TenantService, api.adminToken);
  const reseller = api.client(TenantService, reseller1Admin);
  await platform.setQuota({ quota: { tenantId: 'platform', maxVcpuMillicores: 100_000n } });
  const r1 = await platform.setQuota({
    quota: { tenantId: reseller1, maxDevices: 10, period: QuotaPeriod.DAY },
  });
  assert.equal(r1.quota?.maxDevices, 10);
  assert.equal(r1.quota?.maxVcpuMillicores, undefined);
  const c1 = await reseller.setQuota({ quota: { tenantId: customer1, maxDevices: 5, maxRunningDevices: 2 } });
  assert.equal(c1.quota?.maxDevices, 5);
  await assert.rejects(
    reseller.setQuota({ quota: { tenantId: customer1, maxDevices: 11 } }),
    connectError(Code.InvalidArgument, /quota\.max_devices.*11.*limit 10/),
  );
  await assert.rejects(
    reseller.setQuota({ quota: { tenantId: customer1, maxVcpuMillicores: 200_000n } }),
    connectError(Code.InvalidArgument, /quota\.max_vcpu_millicores.*"platform"/),
  );
  await assert.rejects(
    reseller.setQuota({ quota: { tenantId: customer1, maxDevices: -1 } }),
    connectError(Code.InvalidArgument, /quota\.max_devices/),
  );
  await assert.rejects(
    reseller.setQuota({ quota: { tenantId: reseller1, maxDevices: 100 } }),
    connectError(Code.PermissionDenied),
  );
  await assert.rejects(
    reseller.setQuota({ quota: { tenantId: customer2, maxDevices: 1 } }),
    connectError(Code.NotFound),
  );

  const masked = await reseller.setQuota({
    quota: { tenantId: customer1, maxMemoryMib: 65_536n },
    updateMask: { paths: ['max_memory_mib'] },
  });
  assert.equal(masked.quota?.maxDevices, 5, 'fields outside the mask are kept');
  assert.equal(masked.quota?.maxMemoryMib, 65_536n);
  const read = await api.client(TenantService, customer1Admin).getQuota({});
  assert.equal(read.quota?.maxRunningDevices, 2);
});

test('usage counts the devices of the tenant and its descendants', async () => {
  await insertDevice(customer1, 'running');
  await insertDevice(customer1, 'running');
  await insertDevice(customer1, 'stopped');
  await insertDevice(customer2, 'running');
  const { quotaUsage } = await api.client(TenantService, reseller1Admin).getQuotaUsage({});
  assert.equal(quotaUsage?.tenantId, reseller1);
  assert.equal(quotaUsage?.devices, 3);
  assert.equal(quotaUsage?.runningDevices, 2);
  assert.equal(quotaUsage?.vcpuMillicores, 4000n);
  assert.equal(quotaUsage?.memoryMib, 8192n);
  assert.equal(quotaUsage?.quota?.maxDevices, 10);
  assert.equal(quotaUsage?.quota?.period, QuotaPeriod.DAY);
  const start = quotaUsage?.periodStartTime;
  const end = quotaUsage?.periodEndTime;
  assert.equal(Number((end?.seconds ?? 0n) - (start?.seconds ?? 0n)), 86_400);
});

test('delete refuses tenants with children or devices and soft-deletes the rest', async () => {
  const platform = api.client(TenantService, api.adminToken);
  await assert.rejects(
    platform.deleteTenant({ tenantId: reseller1 }),
    connectError(Code.FailedPrecondition, /child/),
  );
  const reseller = api.client(TenantService, reseller1Admin);
  await assert.rejects(
    reseller.deleteTenant({ tenantId: customer1 }),
    connectError(Code.FailedPrecondition, /3 device/),
  );
  await assert.rejects(
    reseller.deleteTenant({ tenantId: reseller1 }),
    connectError(Code.InvalidArgument, /own tenant/),
  );
  const spare = await reseller.createTenant({ kind: TenantKind.CUSTOMER, displayName: 'Spare' });
  const spareId = spare.tenant?.tenantId ?? '';
  await reseller.deleteTenant({ tenantId: spareId });
  await assert.rejects(reseller.getTenant({ tenantId: spareId }), connectError(Code.NotFound));
  const row = await store.db
    .selectFrom('tenant')
    .select('delete_time')
    .where('id', '=', spareId)
    .executeTakeFirstOrThrow();
  assert.ok(row.delete_time, 'the row stays, marked deleted');
});
