// ADB tunnels through the public API on a real control plane, with an agent on the real stream: who
// may open one, what the token says (and that a stream token verifier refuses it), the URL the agent
// is reached at, and the audit rows made from the agent's reports of each connection.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create, type DescService } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, createClient } from '@connectrpc/connect';
import {
  ApiKeyService,
  agentv1,
  DeviceService,
  Role,
  TenantKind,
  TenantService,
  verifyAdbTunnelToken,
  verifyStreamToken,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { bearerTransport } from '../api/bearer-transport.js';
import { connectError } from '../api/test-api.js';
import { createAgentClient, TestAgent } from '../gateway/test-agent.js';
import { enrollTestHost, insertTestDevice } from '../gateway/testing.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { adbTunnelUrl } from './adb-tunnel-service.js';

let testPlane: TestControlPlane;
let agentClient: ReturnType<typeof createAgentClient>;
let agent: TestAgent;
let welcomeKeys: agentv1.StreamTokenKey[] = [];
let hostId = '';

const api = <S extends DescService>(service: S, token = testPlane.plane.bootstrapToken ?? '') =>
  createClient(service, bearerTransport(testPlane.plane.httpUrl, token));
const db = () => testPlane.plane.deps.db;
const verifyKeys = () => welcomeKeys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));

before(async () => {
  testPlane = await startTestControlPlane({ grpcHost: '127.0.0.1' });
  agentClient = createAgentClient(testPlane.plane.grpcPort, testPlane.plane.deps.gateway.caPem ?? '');
  const enrolled = await enrollTestHost(db());
  hostId = enrolled.hostId;
  agent = TestAgent.connect(agentClient, {
    ...enrolled,
    streamEndpoint: 'wss://host-7.example.test:4443/signal',
  });
  welcomeKeys = (await agent.next('welcome')).streamTokenKeys;
});

after(async () => {
  agent?.cancel();
  agentClient?.close();
  await testPlane?.close();
});

async function tenantWithKey(kind: TenantKind, parentTenantId = '') {
  const tenantId =
    (await api(TenantService).createTenant({ kind, displayName: 'tunnels', parentTenantId })).tenant
      ?.tenantId ?? '';
  const key = await api(ApiKeyService).createApiKey({ tenantId, role: Role.TENANT_USER, displayName: 'dev' });
  return { tenantId, token: key.secret, keyId: key.apiKey?.apiKeyId ?? '' };
}

test('the tunnel endpoint sits beside the stream endpoint, behind a proxy path too', () => {
  assert.equal(adbTunnelUrl('wss://h.example:4443/signal'), 'wss://h.example:4443/adb');
  assert.equal(adbTunnelUrl('ws://127.0.0.1:9/signal'), 'ws://127.0.0.1:9/adb');
  assert.equal(adbTunnelUrl('wss://edge.example/hosts/h1/signal'), 'wss://edge.example/hosts/h1/adb');
});

test('a running device’s owner gets a tunnel token for its device and host that no sfu accepts', async () => {
  const owner = await tenantWithKey(TenantKind.RESELLER);
  const { deviceId } = await insertTestDevice(db(), { hostId, state: 'running', tenantId: owner.tenantId });
  const { adbTunnel: t } = await api(DeviceService, owner.token).createAdbTunnel({
    deviceId,
    ttlSeconds: 120,
  });
  assert.ok(t);
  assert.equal(t.url, 'wss://host-7.example.test:4443/adb');
  assert.equal(t.deviceId, deviceId);
  assert.equal(t.hostId, hostId);
  assert.match(t.tunnelId, /^adbt_/);
  const claims = await verifyAdbTunnelToken(t.token, verifyKeys());
  assert.deepEqual(
    { ...claims, expiresAt: 0, issuedAt: 0 },
    {
      tunnelId: t.tunnelId,
      deviceId,
      hostId,
      tenantId: owner.tenantId,
      actor: owner.keyId,
      expiresAt: 0,
      issuedAt: 0,
    },
  );
  const lifetime = claims.expiresAt - Math.floor(Date.now() / 1000);
  assert.ok(lifetime > 100 && lifetime <= 120, `expires in ${lifetime} s`);
  await assert.rejects(verifyStreamToken(t.token, verifyKeys()), /not valid/);
});

test('who may not: another tenant (NOT_FOUND), a reseller on its customer’s phone (PERMISSION_DENIED), a stopped phone, a bad ttl', async () => {
  const reseller = await tenantWithKey(TenantKind.RESELLER);
  const customer = await tenantWithKey(TenantKind.CUSTOMER, reseller.tenantId);
  const stranger = await tenantWithKey(TenantKind.RESELLER);
  const { deviceId } = await insertTestDevice(db(), {
    hostId,
    state: 'running',
    tenantId: customer.tenantId,
  });
  await assert.rejects(
    api(DeviceService, stranger.token).createAdbTunnel({ deviceId }),
    connectError(Code.NotFound, /device/),
  );
  await assert.rejects(
    api(DeviceService, reseller.token).createAdbTunnel({ deviceId }),
    connectError(Code.PermissionDenied, /device_id: debugging device/),
  );
  const stopped = await insertTestDevice(db(), { hostId, state: 'stopped', tenantId: customer.tenantId });
  await assert.rejects(
    api(DeviceService, customer.token).createAdbTunnel({ deviceId: stopped.deviceId }),
    connectError(Code.FailedPrecondition, /is stopped: it must be running/),
  );
  await assert.rejects(
    api(DeviceService, customer.token).createAdbTunnel({ deviceId, ttlSeconds: 10 }),
    connectError(Code.InvalidArgument, /ttl_seconds/),
  );
  const ops = await api(ApiKeyService).createApiKey({ role: Role.OPS, displayName: 'support' });
  const viaOps = await api(DeviceService, ops.secret).createAdbTunnel({ deviceId });
  assert.equal(viaOps.adbTunnel?.deviceId, deviceId, 'support may debug any phone');
});

test('the host’s reports of a connection become audit rows with its duration; another host’s are ignored', async () => {
  const owner = await tenantWithKey(TenantKind.RESELLER);
  const { deviceId } = await insertTestDevice(db(), { hostId, state: 'running', tenantId: owner.tenantId });
  const tunnelId =
    (await api(DeviceService, owner.token).createAdbTunnel({ deviceId })).adbTunnel?.tunnelId ?? '';
  const report = (
    who: TestAgent,
    event: agentv1.AdbTunnelReport_Event,
    extra: {
      clientAddress?: string;
      durationMs?: bigint;
      bytesToDevice?: bigint;
      bytesFromDevice?: bigint;
      endReason?: string;
    } = {},
  ) =>
    who.send({
      case: 'adbTunnelReport',
      value: create(agentv1.AdbTunnelReportSchema, {
        ...extra,
        tunnelId,
        connectionId: 'c1',
        deviceId,
        tenantId: 'whatever-the-agent-says',
        actor: 'whoever',
        event,
        time: timestampFromDate(new Date()),
      }),
    });
  // Another host cannot speak for this tunnel.
  const other = await enrollTestHost(db());
  const liar = TestAgent.connect(agentClient, other);
  await liar.next('welcome');
  report(liar, agentv1.AdbTunnelReport_Event.ENDED, { durationMs: 1n });
  report(agent, agentv1.AdbTunnelReport_Event.OPENED, { clientAddress: '127.0.0.1' });
  report(agent, agentv1.AdbTunnelReport_Event.ENDED, {
    durationMs: 2500n,
    bytesToDevice: 16n << 20n,
    bytesFromDevice: 4096n,
    endReason: 'CLIENT_CLOSED',
  });
  const rows = await waitFor(
    'the connection’s audit rows',
    async () => {
      await testPlane.plane.deps.audit.flush();
      return db()
        .selectFrom('audit_log')
        .select(['method', 'tenant_id', 'actor', 'detail'])
        .where('resource', 'like', `%${tunnelId}%`)
        .orderBy('id')
        .execute();
    },
    (r) => r.length >= 2,
  );
  liar.cancel();
  assert.deepEqual(
    rows.map((r) => [r.method, r.tenant_id, r.actor]),
    [
      ['AdbTunnel/Connected', owner.tenantId, owner.keyId],
      ['AdbTunnel/Disconnected', owner.tenantId, owner.keyId],
    ],
  );
  assert.deepEqual(rows[1]?.detail, {
    host_id: hostId,
    connection_id: 'c1',
    duration_ms: 2500,
    bytes_to_device: 16 << 20,
    bytes_from_device: 4096,
    end_reason: 'CLIENT_CLOSED',
  });
  const issued = await db()
    .selectFrom('audit_log')
    .select(['method', 'resource', 'outcome'])
    .where('method', '=', 'DeviceService/CreateAdbTunnel')
    .where('tenant_id', '=', owner.tenantId)
    .execute();
  assert.deepEqual(issued, [
    { method: 'DeviceService/CreateAdbTunnel', resource: `deviceId=${deviceId}`, outcome: 'ok' },
  ]);
});
