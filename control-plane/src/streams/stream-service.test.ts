// Stream sessions through the public API on a real control plane, with an agent on the real stream:
// who may watch or drive, what the token says and that the agent's keys verify it, and that ending
// a session (revoked, device stopped, tenant suspended) reaches the host at once.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import { create, type DescService } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Code, createClient } from '@connectrpc/connect';
import {
  ApiKeyService,
  agentv1,
  DeviceService,
  Role,
  StreamRights,
  StreamSessionState,
  TenantKind,
  TenantService,
  TenantState,
  verifyStreamToken,
} from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import { bearerTransport } from '../api/bearer-transport.js';
import { connectError } from '../api/test-api.js';
import { createAgentClient, TestAgent } from '../gateway/test-agent.js';
import { enrollTestHost, insertTestDevice } from '../gateway/testing.js';
import { startTestControlPlane, type TestControlPlane } from '../test-control-plane.js';
import { turnCredential } from './ice.js';
import { createStreamKey, newStreamKeyId } from './keys.js';

let testPlane: TestControlPlane;
let agentClient: ReturnType<typeof createAgentClient>;
let agent: TestAgent;
let welcomeKeys: agentv1.StreamTokenKey[] = [];
let hostId = '';
let enrolled: Awaited<ReturnType<typeof enrollTestHost>>;
const ENDPOINT = 'wss://host-7.example.test:4443/signal';

const api = <S extends DescService>(service: S, token = testPlane.plane.bootstrapToken ?? '') =>
  createClient(service, bearerTransport(testPlane.plane.httpUrl, token));
const db = () => testPlane.plane.deps.db;

before(async () => {
  testPlane = await startTestControlPlane({
    grpcHost: '127.0.0.1',
    turnUrls: ['turn:127.0.0.1:3478?transport=udp'],
    turnSecret: 'coturn-shared-secret',
    stunUrls: ['stun:127.0.0.1:3478'],
    streamKeyOverlapMs: 0,
  });
  agentClient = createAgentClient(testPlane.plane.grpcPort, testPlane.plane.deps.gateway.caPem ?? '');
  enrolled = await enrollTestHost(db());
  hostId = enrolled.hostId;
  agent = TestAgent.connect(agentClient, { ...enrolled, streamEndpoint: ENDPOINT });
  welcomeKeys = (await agent.next('welcome')).streamTokenKeys;
});

after(async () => {
  agent?.cancel();
  agentClient?.close();
  await testPlane?.close();
});

async function tenantWithKey(kind: TenantKind, parentTenantId = '') {
  const tenantId =
    (await api(TenantService).createTenant({ kind, displayName: 'streams', parentTenantId })).tenant
      ?.tenantId ?? '';
  const key = await api(ApiKeyService).createApiKey({
    tenantId,
    role: Role.TENANT_ADMIN,
    displayName: 'admin',
  });
  return { tenantId, token: key.secret };
}

const verifyKeys = () => welcomeKeys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));

test('a running device’s owner gets a token its host verifies, the host’s URL and short-lived TURN credentials', async () => {
  assert.equal(welcomeKeys.length, 1, 'the agent got the key in Welcome');
  assert.equal(welcomeKeys[0]?.algorithm, 'Ed25519');
  const owner = await tenantWithKey(TenantKind.RESELLER);
  const { deviceId } = await insertTestDevice(db(), { hostId, state: 'running', tenantId: owner.tenantId });
  const { streamSession: s } = await api(DeviceService, owner.token).createStreamSession({
    deviceId,
    rights: StreamRights.CONTROL,
    ttlSeconds: 120,
  });
  assert.ok(s);
  assert.equal(s.sfuUrl, ENDPOINT);
  assert.equal(s.rights, StreamRights.CONTROL);
  const claims = await verifyStreamToken(s.token, verifyKeys());
  assert.deepEqual(
    { ...claims, expiresAt: 0, issuedAt: 0 },
    {
      sessionId: s.sessionId,
      deviceId,
      hostId,
      tenantId: owner.tenantId,
      rights: 'control',
      expiresAt: 0,
      issuedAt: 0,
    },
  );
  // Signed now, to the millisecond: a revocation's issued_before is compared with it.
  assert.ok(Math.abs((claims.issuedAt ?? 0) * 1000 - Date.now()) < 60_000, `issued at ${claims.issuedAt}`);
  const lifetime = claims.expiresAt - Math.floor(Date.now() / 1000);
  assert.ok(lifetime > 100 && lifetime <= 120, `expires in ${lifetime} s`);
  const turn = s.iceServers.find((i) => i.urls.some((u) => u.startsWith('turn:')));
  assert.ok(turn);
  assert.match(turn.username, new RegExp(`^\\d+:${s.sessionId}$`));
  assert.equal(
    turn.credential,
    createHmac('sha1', 'coturn-shared-secret').update(turn.username).digest('base64'),
  );
  assert.equal(
    turnCredential('coturn-shared-secret', s.sessionId, Number(turn.username.split(':')[0])).credential,
    turn.credential,
  );
  assert.ok(s.iceServers.some((i) => i.urls.includes('stun:127.0.0.1:3478') && i.username === ''));

  const listed = await api(DeviceService, owner.token).listStreamSessions({ deviceId });
  assert.equal(listed.streamSessions[0]?.state, StreamSessionState.ISSUED);
  assert.equal(listed.streamSessions[0]?.sessionId, s.sessionId);
});

test('who may not: another tenant (NOT_FOUND), a reseller driving its customer’s phone (PERMISSION_DENIED), a stopped phone, a bad ttl', async () => {
  const reseller = await tenantWithKey(TenantKind.RESELLER);
  const customer = await tenantWithKey(TenantKind.CUSTOMER, reseller.tenantId);
  const stranger = await tenantWithKey(TenantKind.RESELLER);
  const { deviceId } = await insertTestDevice(db(), {
    hostId,
    state: 'running',
    tenantId: customer.tenantId,
  });
  await assert.rejects(
    api(DeviceService, stranger.token).createStreamSession({ deviceId }),
    connectError(Code.NotFound, /device/),
  );
  await assert.rejects(
    api(DeviceService, reseller.token).createStreamSession({ deviceId, rights: StreamRights.CONTROL }),
    connectError(Code.PermissionDenied, /rights: driving device/),
  );
  const view = await api(DeviceService, reseller.token).createStreamSession({
    deviceId,
    rights: StreamRights.VIEW,
  });
  assert.equal(view.streamSession?.rights, StreamRights.VIEW, 'the reseller may watch');
  const stopped = await insertTestDevice(db(), { hostId, state: 'stopped', tenantId: customer.tenantId });
  await assert.rejects(
    api(DeviceService, customer.token).createStreamSession({ deviceId: stopped.deviceId }),
    connectError(Code.FailedPrecondition, /is stopped: it must be running/),
  );
  await assert.rejects(
    api(DeviceService, customer.token).createStreamSession({ deviceId, ttlSeconds: 86_401 }),
    connectError(Code.InvalidArgument, /ttl_seconds/),
  );
});

test('revoking a session, stopping the device or suspending the tenant tells the host at once', async () => {
  const owner = await tenantWithKey(TenantKind.RESELLER);
  const customer = await tenantWithKey(TenantKind.CUSTOMER, owner.tenantId);
  const devices = api(DeviceService, owner.token);
  const { deviceId } = await insertTestDevice(db(), { hostId, state: 'running', tenantId: owner.tenantId });
  const one = (await devices.createStreamSession({ deviceId })).streamSession?.sessionId ?? '';
  const revoked = await devices.revokeStreamSession({ sessionId: one, reason: 'support closed the ticket' });
  assert.equal(revoked.streamSession?.state, StreamSessionState.ENDED);
  assert.equal(revoked.streamSession?.endReason, 'REVOKED');
  const told = await agent.next('streamRevocation', 2000, (r) => r.sessionId === one);
  assert.equal(told.message, 'support closed the ticket');
  await devices.revokeStreamSession({ sessionId: one });

  await devices.createStreamSession({ deviceId });
  await devices.stopDevice({ deviceId });
  const stop = await agent.next('streamRevocation', 2000, (r) => r.deviceId === deviceId);
  assert.equal(stop.reason, 'DEVICE_STOPPED');
  assert.ok(stop.issuedBefore, 'tokens issued before the stop no longer admit a join');
  const after = await devices.listStreamSessions({ deviceId, activeOnly: true });
  assert.equal(after.streamSessions.length, 0);

  const theirs = await insertTestDevice(db(), { hostId, state: 'running', tenantId: customer.tenantId });
  const session = (
    await api(DeviceService, customer.token).createStreamSession({ deviceId: theirs.deviceId })
  ).streamSession?.sessionId;
  await api(TenantService, owner.token).updateTenant({
    tenant: { tenantId: customer.tenantId, state: TenantState.SUSPENDED },
    updateMask: { paths: ['state'] },
  });
  const suspended = await agent.next('streamRevocation', 2000, (r) => r.sessionId === session);
  assert.equal(suspended.reason, 'TENANT_SUSPENDED');
  const device = await db()
    .selectFrom('device')
    .select('desired_power')
    .where('id', '=', theirs.deviceId)
    .executeTakeFirstOrThrow();
  assert.equal(device.desired_power, 'stopped', 'a suspended tenant’s phones are stopped');
  const tenant = await api(TenantService, owner.token).getTenant({ tenantId: customer.tenantId });
  assert.equal(tenant.tenant?.state, TenantState.SUSPENDED);
});

test('the host reports joins, figures and ends: recorded for ops, metering and the audit trail; another host’s report is ignored', async () => {
  const owner = await tenantWithKey(TenantKind.RESELLER);
  const { deviceId } = await insertTestDevice(db(), { hostId, state: 'running', tenantId: owner.tenantId });
  const devices = api(DeviceService, owner.token);
  const sessionId = (await devices.createStreamSession({ deviceId })).streamSession?.sessionId ?? '';
  const report = (
    event: agentv1.StreamSessionReport_Event,
    extra: {
      viewerAddress?: string;
      viewerSeconds?: bigint;
      endReason?: string;
      fps?: number;
      glassToGlassP50Ms?: number;
      framesDecoded?: bigint;
      firstFrameMs?: number;
    } = {},
  ) =>
    agent.send({
      case: 'streamSessionReport',
      value: create(agentv1.StreamSessionReportSchema, {
        ...extra,
        sessionId,
        deviceId,
        event,
        time: timestampFromDate(new Date()),
      }),
    });
  report(agentv1.StreamSessionReport_Event.JOINED, { viewerAddress: '127.0.0.1' });
  await waitFor(
    'active',
    async () => (await devices.listStreamSessions({ deviceId })).streamSessions[0],
    (s) => s?.state === StreamSessionState.ACTIVE,
  );
  report(agentv1.StreamSessionReport_Event.STATS, { fps: 24, glassToGlassP50Ms: 41, firstFrameMs: 380.5 });
  const live = await waitFor(
    'the figures of a live session',
    async () => (await devices.listStreamSessions({ deviceId, activeOnly: true })).streamSessions[0],
    (s) => s?.stats?.glassToGlassP50Ms === 41,
  );
  assert.equal(live?.stats?.fps, 24);
  assert.equal(live?.stats?.firstFrameMs, 380.5);
  assert.equal(live?.state, StreamSessionState.ACTIVE);
  report(agentv1.StreamSessionReport_Event.ENDED, {
    viewerSeconds: 42n,
    endReason: 'VIEWER_LEFT',
    fps: 29.5,
    glassToGlassP50Ms: 38,
    framesDecoded: 1234n,
    firstFrameMs: 380.5,
  });
  const ended = await waitFor(
    'ended',
    async () => (await devices.listStreamSessions({ deviceId })).streamSessions[0],
    (s) => s?.state === StreamSessionState.ENDED,
  );
  assert.equal(ended?.viewerSeconds, 42n);
  assert.equal(ended?.endReason, 'VIEWER_LEFT');
  assert.equal(ended?.stats?.fps, 29.5);
  assert.equal(ended?.stats?.glassToGlassP50Ms, 38);
  assert.equal(ended?.stats?.firstFrameMs, 380.5);
  assert.ok(ended?.startTime);
  await testPlane.plane.deps.audit.flush();
  const audit = await db()
    .selectFrom('audit_log')
    .select(['method', 'tenant_id'])
    .where('resource', 'like', `%${sessionId}%`)
    .orderBy('id')
    .execute();
  assert.deepEqual(
    audit.map((a) => a.method),
    ['StreamSession/Joined', 'StreamSession/Ended'],
  );

  // Another host cannot speak for this session.
  const other = await enrollTestHost(db());
  const liar = TestAgent.connect(agentClient, other);
  await liar.next('welcome');
  liar.send({
    case: 'streamSessionReport',
    value: { sessionId, deviceId, event: agentv1.StreamSessionReport_Event.ENDED, viewerSeconds: 100_000n },
  });
  // Its stream answers a later ping only after handling the report (messages are handled in order).
  liar.send({ case: 'pong', value: { nonce: 1n } });
  liar.heartbeat();
  await waitFor(
    'the liar’s report handled',
    async () =>
      (await db().selectFrom('host').select('load').where('id', '=', other.hostId).executeTakeFirstOrThrow())
        .load.cpuPercent,
    (cpu) => cpu === 12.5,
  );
  assert.equal((await devices.listStreamSessions({ deviceId })).streamSessions[0]?.viewerSeconds, 42n);
  liar.cancel();
});

test('a reconnecting agent hears the revocations in force; a new key reaches connected agents and signs', async () => {
  const owner = await tenantWithKey(TenantKind.RESELLER);
  const { deviceId } = await insertTestDevice(db(), { hostId, state: 'running', tenantId: owner.tenantId });
  const devices = api(DeviceService, owner.token);
  const sessionId = (await devices.createStreamSession({ deviceId })).streamSession?.sessionId ?? '';
  await devices.revokeStreamSession({ sessionId });
  await agent.next('streamRevocation', 2000, (r) => r.sessionId === sessionId);
  // The agent restarts and forgets: on its new stream it is told again.
  agent.cancel();
  agent = TestAgent.connect(agentClient, { ...enrolled, streamEndpoint: ENDPOINT });
  await agent.next('welcome');
  const again = await agent.next('streamRevocation', 2000, (r) => r.sessionId === sessionId);
  assert.equal(again.reason, 'REVOKED');

  // Rotation: a newer key file appears; it is read, pushed to the agent, and (no overlap asked
  // here) signs the next token, which the pushed keys verify.
  // Key ids name their second of creation: wait for one after the first key's.
  const firstKey = welcomeKeys[0]?.keyId ?? '';
  await waitFor(
    'a later second',
    () => newStreamKeyId(new Date()),
    (id) => id > firstKey,
  );
  const keyId = await createStreamKey(testPlane.plane.deps.config.streamKeysDir, new Date());
  await testPlane.plane.deps.streams?.keys.reload();
  const pushed = await agent.next('streamKeys', 2000);
  assert.deepEqual(pushed.keys.map((k) => k.keyId).sort(), [welcomeKeys[0]?.keyId, keyId].sort());
  const fresh = (
    await devices.createStreamSession({
      deviceId: (
        await insertTestDevice(db(), { hostId, state: 'running', tenantId: owner.tenantId })
      ).deviceId,
    })
  ).streamSession;
  const claims = await verifyStreamToken(
    fresh?.token ?? '',
    pushed.keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })),
  );
  assert.equal(claims.sessionId, fresh?.sessionId);
  assert.equal(
    JSON.parse(Buffer.from((fresh?.token ?? '').split('.')[0] ?? '', 'base64url').toString()).kid,
    keyId,
  );
});
