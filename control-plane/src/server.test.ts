import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { ApiKeyService, Role } from '@cphone/proto';
import { bearerTransport } from './api/bearer-transport.js';
import type { ControlPlane } from './server.js';
import { startTestControlPlane, type TestControlPlane } from './test-control-plane.js';

let testPlane: TestControlPlane;
let plane: ControlPlane;

before(async () => {
  testPlane = await startTestControlPlane();
  plane = testPlane.plane;
});

after(() => testPlane.close());

test('serves health, readiness and Prometheus metrics', async () => {
  assert.deepEqual(await (await fetch(`${plane.httpUrl}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${plane.httpUrl}/readyz`);
  assert.equal(ready.status, 200);
  const metrics = await (await fetch(`${plane.httpUrl}/metrics`)).text();
  assert.match(metrics, /process_cpu_seconds_total/);
  assert.match(metrics, /# TYPE cphone_rpc_duration_seconds histogram/);
});

test('the first start writes the bootstrap admin key once, to a 0600 file', async () => {
  const file = join(testPlane.dataDir, 'bootstrap-admin-key');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await readFile(file, 'utf8')).trim(), plane.bootstrapToken);
  const keys = await plane.deps.db.selectFrom('api_key').select(['secret_hash']).execute();
  assert.equal(keys.length, 1);
  assert.ok(!plane.bootstrapToken?.includes(keys[0]?.secret_hash ?? '-'), 'only a hash is stored');
});

test('the Connect API authenticates, scopes and audits calls', async () => {
  const transport = (token?: string) => bearerTransport(plane.httpUrl, token);
  const anonymous = createClient(ApiKeyService, transport());
  await assert.rejects(anonymous.listApiKeys({}), (e) => ConnectError.from(e).code === Code.Unauthenticated);
  const forged = createClient(ApiKeyService, transport(`${plane.bootstrapToken?.split('.')[0]}.nope`));
  await assert.rejects(forged.listApiKeys({}), (e) => ConnectError.from(e).code === Code.Unauthenticated);

  const admin = createClient(ApiKeyService, transport(plane.bootstrapToken));
  const created = await admin.createApiKey({ displayName: 'ops key', role: Role.OPS });
  assert.equal(created.apiKey?.role, Role.OPS);
  assert.match(created.secret, /^key_[0-9a-z]+\.cpk_/);

  const ops = createClient(ApiKeyService, transport(created.secret));
  await assert.rejects(
    ops.createApiKey({ displayName: 'escalate', role: Role.PLATFORM_ADMIN }),
    (e) => ConnectError.from(e).code === Code.PermissionDenied,
  );
  await assert.rejects(
    admin.getApiKey({ apiKeyId: 'key_unknown' }),
    (e) => ConnectError.from(e).code === Code.NotFound && /key_unknown/.test(ConnectError.from(e).rawMessage),
  );
  const listed = await admin.listApiKeys({ pageSize: 1 });
  assert.equal(listed.apiKeys.length, 1);
  assert.notEqual(listed.nextPageToken, '');
  const second = await admin.listApiKeys({ pageSize: 1, pageToken: listed.nextPageToken });
  assert.equal(second.apiKeys.length, 1);
  assert.notEqual(second.apiKeys[0]?.apiKeyId, listed.apiKeys[0]?.apiKeyId);
  await assert.rejects(
    admin.listApiKeys({ pageSize: 1, pageToken: listed.nextPageToken, includeRevoked: true }),
    (e) =>
      ConnectError.from(e).code === Code.InvalidArgument &&
      /page_token/.test(ConnectError.from(e).rawMessage),
  );

  await admin.revokeApiKey({ apiKeyId: created.apiKey?.apiKeyId ?? '' });
  await assert.rejects(ops.listApiKeys({}), (e) => ConnectError.from(e).code === Code.Unauthenticated);

  await plane.deps.audit.flush();
  const audit = await plane.deps.db
    .selectFrom('audit_log')
    .select(['method', 'outcome', 'role'])
    .orderBy('id')
    .execute();
  assert.deepEqual(
    audit.map((a) => `${a.method} ${a.outcome}`),
    [
      // Refused before the caller was known: recorded too, reads as well as writes.
      'ApiKeyService/ListApiKeys unauthenticated',
      'ApiKeyService/ListApiKeys unauthenticated',
      'ApiKeyService/CreateApiKey ok',
      'ApiKeyService/CreateApiKey permission_denied',
      'ApiKeyService/RevokeApiKey ok',
      'ApiKeyService/ListApiKeys unauthenticated',
    ],
  );
});
