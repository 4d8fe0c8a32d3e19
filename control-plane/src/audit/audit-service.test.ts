// The audit trail through the public API: who may read which rows, the filters and pages, and what
// a row holds for a refused, a cross-tenant and an anonymous attempt. Runs on PostgreSQL with
// DATABASE_URL, else on PGlite.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create, toJsonString } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type Client, Code, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import {
  ActorKind,
  type AuditEvent,
  AuditEventSchema,
  AuditService,
  DeviceService,
  Role,
} from '@cphone/proto';
import { connectError } from '../api/test-api.js';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import { ANDROID_14, type DeviceTestServer, startDeviceTestServer } from '../devices/testing.js';
import { insertHosts } from '../placement/testing.js';
import { auditService } from './audit-service.js';

let server: DeviceTestServer;
let acmeAdmin: string;
let globexAdmin: string;
let acmeUser: string;
let deviceId: string;
const IMAGE = 'android-14';

const audit = (token: string): Client<typeof AuditService> => server.api.client(AuditService, token);

/** A device client that sends its own headers (a forged forwarding header, a bad key). */
function devicesWith(headers: Record<string, string>): Client<typeof DeviceService> {
  return createClient(
    DeviceService,
    createConnectTransport({
      baseUrl: server.api.url,
      httpVersion: '1.1',
      interceptors: [
        (next) => (req) => {
          for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
          return next(req);
        },
      ],
    }),
  );
}

async function list(
  token: string,
  request: Parameters<Client<typeof AuditService>['listAuditEvents']>[0] = {},
) {
  await server.api.deps.audit.flush();
  return (await audit(token).listAuditEvents(request)).auditEvents;
}

before(async () => {
  server = await startDeviceTestServer({
    routes: (router, deps) => router.service(AuditService, auditService(deps)),
    // The test's client is the proxy: what it forwards is believed.
    config: { trustedProxies: ['127.0.0.1', '::1'] },
  });
  const admin = server.clients(server.api.adminToken);
  await admin.images.createImage({ imageId: IMAGE, image: ANDROID_14 });
  acmeAdmin = await server.addTenant('acme', 'tenant_admin');
  acmeUser = await server.api.token('acme', 'tenant_user');
  globexAdmin = await server.addTenant('globex', 'tenant_admin');
  await insertHosts(server.store.db, [{ id: 'audit-1', labels: { pool: 'audit' } }]);
  const created = await server.clients(acmeAdmin).devices.batchCreateDevices({
    requests: [
      { displayName: 'audited', spec: { imageId: IMAGE }, placement: { nodeSelector: { pool: 'audit' } } },
    ],
  });
  deviceId = created.devices[0]?.deviceId ?? '';
  assert.ok(deviceId);
});

after(() => server?.close());

test('an UpdateDevice row names the device, the changed fields, the address and request id', async () => {
  await devicesWith({
    authorization: `Bearer ${acmeAdmin}`,
    'x-forwarded-for': '198.51.100.9, 203.0.113.7',
    'x-request-id': 'req-update-1',
  }).updateDevice({
    device: { deviceId, displayName: 'renamed' },
    updateMask: { paths: ['display_name'] },
  });
  const [row] = await list(acmeAdmin, { method: 'cphone.api.v1.DeviceService/UpdateDevice' });
  assert.ok(row);
  assert.equal(row.method, 'cphone.api.v1.DeviceService/UpdateDevice');
  assert.equal(row.resourceType, 'device');
  assert.equal(row.resourceId, deviceId);
  assert.equal(row.tenantId, 'acme');
  assert.equal(row.outcome, 'ok');
  assert.equal(row.message, '');
  assert.equal(row.requestId, 'req-update-1');
  // The proxy (127.0.0.1) is trusted: the right-most forwarded address is the client.
  assert.equal(row.remoteAddress, '203.0.113.7');
  assert.deepEqual(row.detail, { update_mask: ['display_name'] });
  assert.equal(row.actor?.kind, ActorKind.API_KEY);
  assert.equal(row.actor?.tenantId, 'acme');
  assert.equal(row.actor?.role, Role.TENANT_ADMIN);
  assert.equal(row.actor?.id, acmeAdmin.split('.')[0]);

  const created = await list(acmeAdmin, { method: 'DeviceService/BatchCreateDevices' });
  assert.equal(created[0]?.resourceId, deviceId, 'a create names what it created');
  assert.equal(created[0]?.detail?.requests, 1);
});

test("another tenant's attempt on a device is the device owner's to see; the actor sees its own, not whose", async () => {
  await assert.rejects(
    server.clients(globexAdmin).devices.stopDevice({ deviceId }),
    connectError(Code.NotFound),
  );
  const globexKey = globexAdmin.split('.')[0];
  const [seen] = await list(acmeAdmin, { actorId: globexKey ?? '' });
  assert.ok(seen, 'acme sees globex’s attempt on its device');
  assert.equal(seen.outcome, 'not_found');
  assert.equal(seen.tenantId, 'acme');
  assert.equal(seen.resourceId, deviceId);
  assert.equal(seen.actor?.tenantId, '', 'the attempt names the key, not its tenant');
  assert.equal(seen.actor?.role, Role.UNSPECIFIED);
  assert.match(seen.message, /not found/);

  const own = await list(globexAdmin);
  const attempt = own.find((e) => e.method.endsWith('/StopDevice'));
  assert.ok(attempt, 'globex sees its own attempt');
  assert.equal(attempt.tenantId, '', 'without learning whose device it was');
  assert.equal(attempt.actor?.tenantId, 'globex');
  assert.ok(
    own.every((e) => !e.method.endsWith('/UpdateDevice') && !e.method.endsWith('/BatchCreateDevices')),
    'globex never sees acme’s own calls',
  );
});

test('an unauthenticated attempt leaves a row under the target tenant, with the key id but never the secret', async () => {
  const secret = 'cpk_not-the-real-one';
  await assert.rejects(
    devicesWith({ authorization: `Bearer key_0forged.${secret}` }).deleteDevice({ deviceId }),
    connectError(Code.Unauthenticated),
  );
  await assert.rejects(
    devicesWith({}).deleteDevice({ deviceId: 'dev_nobody' }),
    connectError(Code.Unauthenticated),
  );
  const forAcme = await list(acmeAdmin, { actorKind: ActorKind.ANONYMOUS });
  assert.equal(forAcme.length, 1);
  const [row] = forAcme;
  assert.equal(row?.actor?.id, 'key_0forged');
  assert.equal(row?.outcome, 'unauthenticated');
  assert.equal(row?.tenantId, 'acme');
  assert.equal(row?.resourceId, deviceId);
  assert.equal(row?.detail?.credential, 'api_key');
  assert.ok(
    !toJsonString(AuditEventSchema, row ?? create(AuditEventSchema)).includes(secret),
    'the secret is nowhere in the event',
  );
  // The one on an unknown device is the platform's.
  const forPlatform = await list(server.api.adminToken, {
    actorKind: ActorKind.ANONYMOUS,
    resourceId: 'dev_nobody',
  });
  assert.equal(forPlatform.length, 1);
  assert.equal(forPlatform[0]?.tenantId, PLATFORM_TENANT_ID);
  assert.equal(forPlatform[0]?.detail?.credential, 'none');
  const raw = await server.store.db.selectFrom('audit_log').selectAll().execute();
  assert.ok(!JSON.stringify(raw, (_, v) => (typeof v === 'bigint' ? String(v) : v)).includes(secret));
});

test('filters by outcome, resource type, time range; pages newest first with signed tokens', async () => {
  for (const name of ['p1', 'p2', 'p3']) {
    await server.clients(acmeAdmin).devices.updateDevice({
      device: { deviceId, displayName: name },
      updateMask: { paths: ['display_name'] },
    });
  }
  const all = await list(acmeAdmin, { resourceType: 'device', outcome: 'ok' });
  assert.ok(all.length >= 5);
  const ids = all.map((e) => Number(e.auditEventId));
  assert.deepEqual(
    ids,
    [...ids].sort((a, b) => b - a),
    'newest first',
  );
  assert.ok(all.every((e) => e.outcome === 'ok' && e.resourceType === 'device'));

  const paged: AuditEvent[] = [];
  let pageToken = '';
  do {
    const page = await audit(acmeAdmin).listAuditEvents({
      resourceType: 'device',
      outcome: 'ok',
      pageSize: 2,
      pageToken,
    });
    assert.ok(page.auditEvents.length <= 2);
    paged.push(...page.auditEvents);
    pageToken = page.nextPageToken;
  } while (pageToken);
  assert.deepEqual(
    paged.map((e) => e.auditEventId),
    all.map((e) => e.auditEventId),
  );
  await assert.rejects(
    audit(acmeAdmin).listAuditEvents({
      outcome: 'ok',
      pageSize: 2,
      pageToken: (await audit(acmeAdmin).listAuditEvents({ resourceType: 'device', pageSize: 1 }))
        .nextPageToken,
    }),
    connectError(Code.InvalidArgument, /page_token/),
  );

  const newest = all[0]?.createTime;
  assert.ok(newest);
  const after = await list(acmeAdmin, { startTime: newest, resourceType: 'device' });
  assert.ok(after.length >= 1 && after.every((e) => Number(e.createTime?.seconds) >= Number(newest.seconds)));
  const before = await list(acmeAdmin, { endTime: timestampFromDate(new Date(0)) });
  assert.deepEqual(before, []);

  await assert.rejects(
    audit(acmeAdmin).listAuditEvents({ outcome: 'NotFound' }),
    connectError(Code.InvalidArgument, /outcome/),
  );
});

test('TENANT_ADMIN or above; a tenant is scoped to its subtree, an ancestor sees it with descendants', async () => {
  await assert.rejects(
    audit(acmeUser).listAuditEvents({}),
    connectError(Code.PermissionDenied, /tenant_admin/),
  );
  await assert.rejects(
    audit(acmeAdmin).listAuditEvents({ tenantId: 'globex' }),
    connectError(Code.NotFound, /globex/),
  );
  const own = await list(server.api.adminToken, {});
  assert.ok(own.every((e) => e.tenantId === PLATFORM_TENANT_ID || e.actor?.tenantId === PLATFORM_TENANT_ID));
  const everything = await list(server.api.adminToken, { includeDescendants: true, pageSize: 1000 });
  const tenants = new Set(everything.map((e) => e.tenantId));
  assert.ok(tenants.has('acme') && tenants.has(PLATFORM_TENANT_ID));
  const acme = await list(server.api.adminToken, { tenantId: 'acme', pageSize: 1000 });
  assert.ok(acme.length > 0);
  assert.ok(acme.every((e) => e.tenantId === 'acme' || e.actor?.tenantId === 'acme'));
});
