import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { ApiKeyService, HostService, Role, TenantKind, TenantService } from '@cphone/proto';
import { hashSecret } from '../auth/api-keys.js';
import { hostService } from '../hosts/host-service.js';
import { newId, newSecret } from '../ids.js';
import type { Database } from '../store/schema.js';
import { tenantService } from '../tenants/tenant-service.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { apiKeyService } from './api-key-service.js';
import { connectError, startTestApi, type TestApi } from './test-api.js';

let store: TestDatabase<Database>;
let api: TestApi;

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    routes: (router, deps) => {
      const gateway = { desiredChanged: () => {}, drain: () => false, disconnect: () => {} };
      router.service(ApiKeyService, apiKeyService(deps));
      router.service(HostService, hostService({ ...deps, gateway }));
      router.service(TenantService, tenantService(deps));
    },
  });
  await api.tenant('t_reseller', 'reseller', 'platform');
});

after(async () => {
  await api?.close();
  await store?.close();
});

describe('fleet-wide roles live only on the platform tenant', () => {
  test('minting an OPS or PLATFORM_ADMIN key for another tenant is INVALID_ARGUMENT naming role and tenant', async () => {
    const admin = api.client(ApiKeyService, api.adminToken);
    for (const role of [Role.OPS, Role.PLATFORM_ADMIN]) {
      await assert.rejects(
        admin.createApiKey({ tenantId: 't_reseller', displayName: 'fleet key', role }),
        connectError(
          Code.InvalidArgument,
          /invalid role .*only for keys of the platform tenant; tenant "t_reseller" is a reseller/,
        ),
      );
    }
    const onPlatform = await admin.createApiKey({ displayName: 'ops on the platform', role: Role.OPS });
    assert.equal(onPlatform.apiKey?.role, Role.OPS);
    const { apiKeys } = await admin.listApiKeys({ tenantId: 't_reseller', includeRevoked: true });
    assert.deepEqual(apiKeys, [], 'nothing was stored for the reseller');
  });

  test('a stored fleet key on a reseller acts as tenant_admin of its subtree, never on the fleet', async () => {
    // A key minted before creation checked the tenant.
    const id = newId('key');
    const secret = newSecret('cpk');
    await store.db
      .insertInto('api_key')
      .values({
        id,
        tenant_id: 't_reseller',
        role: 'ops',
        display_name: 'legacy ops',
        secret_hash: hashSecret(secret),
        expire_time: null,
      })
      .execute();
    const token = `${id}.${secret}`;
    await assert.rejects(
      api.client(HostService, token).listHosts({}),
      connectError(Code.PermissionDenied, /tenant_admin/),
    );
    await assert.rejects(
      api.client(HostService, token).cordonHost({ hostId: 'host_any', reason: 'x' }),
      connectError(Code.PermissionDenied),
    );
    // What a tenant admin may do in its own subtree still works.
    const { tenant } = await api
      .client(TenantService, token)
      .createTenant({ kind: TenantKind.CUSTOMER, displayName: 'a customer' });
    assert.equal(tenant?.parentTenantId, 't_reseller');
    await assert.rejects(
      api.client(ApiKeyService, token).createApiKey({ displayName: 'escalate', role: Role.OPS }),
      connectError(Code.PermissionDenied),
    );
  });
});

describe('API key display names follow the rules of other names', () => {
  test('empty, oversize or control characters are INVALID_ARGUMENT; the stored name is trimmed', async () => {
    const admin = api.client(ApiKeyService, api.adminToken);
    for (const displayName of ['', '   ', 'n'.repeat(201), 'red \u001b[31malert', 'two\nlines']) {
      await assert.rejects(
        admin.createApiKey({ displayName, role: Role.TENANT_USER }),
        connectError(Code.InvalidArgument, /^invalid display_name /),
      );
    }
    const { apiKey } = await admin.createApiKey({ displayName: '  billing-sync  ', role: Role.TENANT_USER });
    assert.equal(apiKey?.displayName, 'billing-sync');
  });
});

test('a retried CreateApiKey with the same request_id makes no second key and names the first', async () => {
  const admin = api.client(ApiKeyService, api.adminToken);
  const ask = { requestId: 'req-key-1', displayName: 'ci deploy', role: Role.TENANT_USER };
  const first = await admin.createApiKey(ask);
  const keyId = first.apiKey?.apiKeyId ?? '';
  await assert.rejects(
    admin.createApiKey(ask),
    connectError(Code.AlreadyExists, new RegExp(`api key ${keyId} with request_id "req-key-1"`)),
  );
  await assert.rejects(
    admin.createApiKey({ ...ask, displayName: 'another' }),
    connectError(Code.InvalidArgument, /request_id/),
  );
  const named = await store.db
    .selectFrom('api_key')
    .select('id')
    .where('display_name', '=', 'ci deploy')
    .execute();
  assert.deepEqual(
    named.map((k) => k.id),
    [keyId],
  );
});
