import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ApiKeyService } from '@cphone/proto';
import type { Database } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { apiKeyService } from './api-key-service.js';
import { startTestApi, type TestApi } from './test-api.js';

let store: TestDatabase<Database>;
let api: TestApi;

before(async () => {
  store = await createTestStore();
  api = await startTestApi({
    db: store.db,
    routes: (router, deps) => router.service(ApiKeyService, apiKeyService(deps)),
  });
});

after(async () => {
  await api?.close();
  await store?.close();
});

async function call(method: string, body: object, headers: Record<string, string> = {}) {
  const res = await fetch(`${api.url}/cphone.api.v1.ApiKeyService/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${api.adminToken}`, ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    requestId: res.headers.get('x-request-id'),
    body: (await res.json()) as { code?: string },
  };
}

test('every answer carries a request id a person can quote, an error as well as a success', async () => {
  const ok = await call('ListApiKeys', {});
  assert.equal(ok.status, 200);
  assert.match(ok.requestId ?? '', /^req_[A-Za-z0-9_-]{12}$/);
  const missing = await call('GetApiKey', { apiKeyId: 'key_nope' });
  assert.equal(missing.body.code, 'not_found');
  assert.match(missing.requestId ?? '', /^req_[A-Za-z0-9_-]{12}$/);
  assert.notEqual(missing.requestId, ok.requestId);
});

test("a caller's own plain request id is kept; one that is not plain is replaced", async () => {
  const kept = await call('ListApiKeys', {}, { 'x-request-id': 'lb-7f3a.42' });
  assert.equal(kept.requestId, 'lb-7f3a.42');
  const replaced = await call('ListApiKeys', {}, { 'x-request-id': 'a b<script>' });
  assert.match(replaced.requestId ?? '', /^req_/);
});
