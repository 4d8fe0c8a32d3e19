// Quota admission through the public API on a real control plane (PostgreSQL with DATABASE_URL,
// else PGlite): creates and starts are admitted against the quota of their tenant and of every
// ancestor, under concurrency, and refusals say whose limit, which one and how much is in use; a
// suspended tenant admits nothing below it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import {
  ApiKeyService,
  DeviceService,
  ImageService,
  PowerState,
  Role,
  TenantKind,
  TenantService,
  TenantState,
} from '@cphone/proto';
import { bearerTransport } from '../api/bearer-transport.js';
import { connectError } from '../api/test-api.js';
import { applyPlan } from '../placement/applier.js';
import { insertHosts } from '../placement/testing.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { subtreeUse } from './admission.js';

let testPlane: TestControlPlane;
const client = <S extends DescService>(service: S) =>
  createClient(service, bearerTransport(testPlane.plane.httpUrl, testPlane.plane.bootstrapToken ?? ''));
const db = () => testPlane.plane.deps.db;

before(async () => {
  testPlane = await startTestControlPlane();
  await client(ImageService).createImage({
    imageId: 'img-q',
    image: {
      displayName: 'Android',
      containerImage: 'redroid/redroid:14.0.0-latest',
      archs: ['arm64'],
      defaultSpec: { vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4 },
    },
  });
  // Room for every create below: only quotas refuse.
  await insertHosts(
    db(),
    Array.from({ length: 8 }, (_, i) => ({
      id: `q-host-${i}`,
      vcpu: 400_000,
      memoryMib: 800_000,
      devices: 200,
    })),
  );
});

after(() => testPlane.close());

async function tenant(kind: TenantKind, name: string, parentTenantId = ''): Promise<string> {
  const created = await client(TenantService).createTenant({ kind, displayName: name, parentTenantId });
  return created.tenant?.tenantId ?? '';
}

const createOne = (tenantId: string, power = PowerState.RUNNING) =>
  client(DeviceService).batchCreateDevices({
    tenantId,
    requests: [{ spec: { imageId: 'img-q' }, desiredPowerState: power }],
  });

async function count(tenantIds: readonly string[]): Promise<number> {
  const row = await db()
    .selectFrom('device')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant_id', 'in', tenantIds)
    .where('state', 'not in', ['deleting', 'deleted'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

test('100 concurrent creates across sibling customers never overshoot their reseller or themselves', async () => {
  const reseller = await tenant(TenantKind.RESELLER, 'overbooker');
  const customers = await Promise.all(
    [1, 2, 3, 4].map((i) => tenant(TenantKind.CUSTOMER, `c${i}`, reseller)),
  );
  const tenants = client(TenantService);
  await tenants.setQuota({ quota: { tenantId: reseller, maxDevices: 30 } });
  // Overbooked: 4 x 12 > 30, as resellers do.
  for (const c of customers) await tenants.setQuota({ quota: { tenantId: c, maxDevices: 12 } });
  const results = await Promise.allSettled(
    Array.from({ length: 100 }, (_, i) => createOne(customers[i % customers.length] ?? '')),
  );
  const refused = results.filter((r) => r.status === 'rejected').map((r) => ConnectError.from(r.reason));
  assert.equal(results.length - refused.length, 30, 'exactly the reseller’s limit was admitted');
  for (const e of refused) {
    assert.equal(Code[e.code], 'ResourceExhausted', e.rawMessage);
    assert.match(
      e.rawMessage,
      /quota of tenant "tnt_\w+" exceeded: max_devices is (30|12) devices, (30|12) in use/,
    );
  }
  assert.equal(await count([reseller, ...customers]), 30);
  for (const c of customers) assert.ok((await count([c])) <= 12, `${c} stays within its own limit`);
  const usage = await tenants.getQuotaUsage({ tenantId: reseller });
  assert.equal(usage.quotaUsage?.devices, 30, 'GetQuotaUsage reads what admission counts');
  assert.equal((await subtreeUse(db(), reseller)).devices, 30);
});

test('a nested limit refuses first, naming the nearest tenant; stopped devices do not count as running', async () => {
  const reseller = await tenant(TenantKind.RESELLER, 'nested');
  const customer = await tenant(TenantKind.CUSTOMER, 'nested-c', reseller);
  const tenants = client(TenantService);
  await tenants.setQuota({
    quota: { tenantId: reseller, maxDevices: 10, maxRunningDevices: 4, maxMemoryMib: 100_000n },
  });
  await tenants.setQuota({ quota: { tenantId: customer, maxDevices: 3, maxRunningDevices: 2 } });
  await createOne(customer);
  await createOne(customer);
  await assert.rejects(
    createOne(customer),
    connectError(
      Code.ResourceExhausted,
      new RegExp(`tenant "${customer}" exceeded: max_running_devices is 2`),
    ),
  );
  const stopped = (await createOne(customer, PowerState.STOPPED)).devices[0];
  assert.ok(stopped, 'a stopped device needs no running slot');
  await assert.rejects(
    createOne(customer, PowerState.STOPPED),
    connectError(
      Code.ResourceExhausted,
      new RegExp(`tenant "${customer}" exceeded: max_devices is 3 devices, 3 in use`),
    ),
  );
  // Starting it asks for a running slot too.
  await assert.rejects(
    client(DeviceService).startDevice({ deviceId: stopped.deviceId }),
    connectError(
      Code.ResourceExhausted,
      /max_running_devices is 2 running devices, 2 in use, this asks for 1 more/,
    ),
  );
  const use = (await tenants.getQuotaUsage({ tenantId: customer })).quotaUsage;
  assert.deepEqual([use?.devices, use?.runningDevices, use?.memoryMib], [3, 2, 2048n]);
});

test('creates racing SetQuota: the limit in force when each commits holds, and a child never exceeds its parent', async () => {
  const reseller = await tenant(TenantKind.RESELLER, 'racing');
  const customer = await tenant(TenantKind.CUSTOMER, 'racing-c', reseller);
  const tenants = client(TenantService);
  await tenants.setQuota({ quota: { tenantId: reseller, maxDevices: 40 } });
  const creates = Promise.allSettled(Array.from({ length: 60 }, () => createOne(customer)));
  const lowered = tenants.setQuota({ quota: { tenantId: reseller, maxDevices: 15 } });
  const results = await creates;
  await lowered;
  const admitted = results.filter((r) => r.status === 'fulfilled').length;
  assert.ok(admitted <= 40, `${admitted} admitted under a limit of at most 40`);
  assert.equal(await count([customer]), admitted);
  // Whatever raced, from now on the lowered limit holds.
  if (admitted >= 15)
    await assert.rejects(createOne(customer), connectError(Code.ResourceExhausted, /max_devices is 15/));

  // SetQuota on parent and child at once: never a child above its parent.
  await tenants.setQuota({ quota: { tenantId: reseller, maxDevices: 100 } });
  const both = await Promise.allSettled([
    tenants.setQuota({ quota: { tenantId: reseller, maxDevices: 20 } }),
    tenants.setQuota({ quota: { tenantId: customer, maxDevices: 50 } }),
  ]);
  const rows = await db()
    .selectFrom('quota')
    .select(['tenant_id', 'max_devices'])
    .where('tenant_id', 'in', [reseller, customer])
    .execute();
  const limit = (id: string) => rows.find((r) => r.tenant_id === id)?.max_devices ?? null;
  assert.ok((limit(customer) ?? 0) <= (limit(reseller) ?? Number.POSITIVE_INFINITY), JSON.stringify(rows));
  assert.equal(both.filter((r) => r.status === 'rejected').length, 1, 'one of the two was refused');
});

test('100 concurrent SetQuota and create calls under one reseller: no child limit above the parent, no use above either', async () => {
  const reseller = await tenant(TenantKind.RESELLER, 'delegating');
  const customers = await Promise.all([1, 2, 3].map((i) => tenant(TenantKind.CUSTOMER, `d${i}`, reseller)));
  const tenants = client(TenantService);
  await tenants.setQuota({ quota: { tenantId: reseller, maxDevices: 20 } });
  // Deterministic mix: every third call moves a limit (the reseller's between 10 and 24, a
  // customer's between 5 and 29, some above the reseller's), the rest create.
  const calls = Array.from({ length: 100 }, (_, i) => {
    const customer = customers[i % customers.length] ?? '';
    if (i % 3 !== 0) return createOne(customer);
    if (i % 2 === 0)
      return tenants.setQuota({ quota: { tenantId: reseller, maxDevices: 10 + ((i * 7) % 15) } });
    return tenants.setQuota({ quota: { tenantId: customer, maxDevices: 5 + ((i * 11) % 25) } });
  });
  const results = await Promise.allSettled(calls);
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    const e = ConnectError.from(r.reason);
    assert.ok(
      ['ResourceExhausted', 'InvalidArgument'].includes(Code[e.code]),
      `only quota refusals: ${Code[e.code]} ${e.rawMessage}`,
    );
  }
  const rows = await db()
    .selectFrom('quota')
    .select(['tenant_id', 'max_devices'])
    .where('tenant_id', 'in', [reseller, ...customers])
    .execute();
  const limit = (id: string) => rows.find((r) => r.tenant_id === id)?.max_devices ?? Number.POSITIVE_INFINITY;
  // A customer without a limit of its own (every SetQuota on it refused) defers to the reseller's.
  const limitedCustomers = customers.filter((c) => Number.isFinite(limit(c)));
  assert.ok(limitedCustomers.length > 0, 'some customer limits were set');
  for (const c of limitedCustomers) {
    assert.ok(limit(c) <= limit(reseller), `${c}: ${limit(c)} <= ${limit(reseller)}`);
  }
  // Every create was admitted under the limits in force when it committed; the reseller's
  // highest limit in the run was 24, and the use never passed the one it had then.
  const total = await count([reseller, ...customers]);
  assert.ok(total <= 24, `${total} devices under a reseller limit of at most 24`);
  const created = results.filter((r, i) => i % 3 !== 0 && r.status === 'fulfilled').length;
  assert.equal(total, created, 'every admitted create is a device, every refused one is not');
  // From here on the final limits hold.
  const headroom = limit(reseller) - total;
  if (headroom <= 0) {
    await assert.rejects(createOne(customers[0] ?? ''), connectError(Code.ResourceExhausted, /max_devices/));
  }
});

test('a move changes nothing for its tenant and is admitted even over a lowered quota', async () => {
  const reseller = await tenant(TenantKind.RESELLER, 'mover');
  const device = (await createOne(reseller)).devices[0];
  assert.ok(device);
  await client(TenantService).setQuota({
    quota: { tenantId: reseller, maxDevices: 0, maxRunningDevices: 0 },
  });
  const row = await db()
    .selectFrom('device')
    .selectAll()
    .where('id', '=', device.deviceId)
    .executeTakeFirstOrThrow();
  await db().updateTable('device').set({ state: 'stopped' }).where('id', '=', row.id).execute();
  const to = await db()
    .transaction()
    .execute(async (trx) => {
      const applied = await applyPlan(
        trx,
        {
          tenantId: reseller,
          moves: [
            {
              deviceId: row.id,
              tenantId: reseller,
              fromHostId: row.host_id ?? '',
              fromState: 'stopped',
              ask: {
                resources: { vcpuMillicores: 1000, memoryMib: 1024, storageGib: 4, devices: 1 },
                image: { id: 'img-q', arch: ['arm64'] },
                nodeSelector: {},
                strategy: 'spread',
                spreadTenant: false,
              },
              reason: 'MIGRATED',
              by: 'a test',
            },
          ],
        },
        { now: new Date() },
      );
      return applied.hostOf[0];
    });
  assert.ok(to && to !== row.host_id, `moved from ${row.host_id} to ${to}`);
});

test('a suspended reseller: its customers’ keys are refused, their phones stopped, and nothing under it starts until it is active again', async () => {
  const reseller = await tenant(TenantKind.RESELLER, 'suspended reseller');
  const customer = await tenant(TenantKind.CUSTOMER, 'its customer', reseller);
  const key = await client(ApiKeyService).createApiKey({
    tenantId: customer,
    displayName: 'customer key',
    role: Role.TENANT_ADMIN,
  });
  const asCustomer = createClient(DeviceService, bearerTransport(testPlane.plane.httpUrl, key.secret));
  const created = await asCustomer.batchCreateDevices({
    tenantId: customer,
    requests: [{ spec: { imageId: 'img-q' }, desiredPowerState: PowerState.RUNNING }],
  });
  const deviceId = created.devices[0]?.deviceId ?? '';
  assert.ok(deviceId);

  const tenants = client(TenantService);
  const suspend = (state: TenantState) =>
    tenants.updateTenant({ tenant: { tenantId: reseller, state }, updateMask: { paths: ['state'] } });
  await suspend(TenantState.SUSPENDED);
  const stopped = await db()
    .selectFrom('device')
    .select('desired_power')
    .where('id', '=', deviceId)
    .executeTakeFirstOrThrow();
  assert.equal(stopped.desired_power, 'stopped');
  await assert.rejects(asCustomer.getDevice({ deviceId }), connectError(Code.Unauthenticated));

  // The platform can still act on the subtree, but not bring phones back.
  await assert.rejects(
    client(DeviceService).startDevice({ deviceId }),
    connectError(Code.FailedPrecondition, new RegExp(`tenant "${reseller}" is suspended`)),
  );
  await assert.rejects(
    createOne(customer),
    connectError(Code.FailedPrecondition, new RegExp(`tenant "${reseller}" is suspended`)),
  );
  assert.equal(await count([customer]), 1, 'nothing was created');

  await suspend(TenantState.ACTIVE);
  await asCustomer.getDevice({ deviceId });
  await asCustomer.startDevice({ deviceId });
  const running = await db()
    .selectFrom('device')
    .select('desired_power')
    .where('id', '=', deviceId)
    .executeTakeFirstOrThrow();
  assert.equal(running.desired_power, 'running');
});
