// The edge rules on decoded messages, through the in-memory router with the real interceptor: any
// method, any depth, before the handler runs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { Code, createClient, createRouterTransport } from '@connectrpc/connect';
import {
  BatchCreateDevicesRequestSchema,
  CreateApiKeyRequestSchema,
  DeviceService,
  DrainHostRequestSchema,
} from '@cphone/proto';
import pino from 'pino';
import { createApiKey } from '../auth/api-keys.js';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import { systemClock } from '../clock.js';
import { loadConfig } from '../config.js';
import { createMetrics } from '../metrics.js';
import type { Database } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { AuditWriter } from './audit-writer.js';
import { apiInterceptor } from './interceptors.js';
import { checkRequest, MAX_ENTRIES, MAX_STRING_CHARS } from './request-check.js';
import { connectError } from './test-api.js';

test('the first bad field is named by its path, with map keys quoted', () => {
  const batch = create(BatchCreateDevicesRequestSchema, {
    requests: [
      { displayName: 'ok' },
      { spec: { properties: { 'ro.x': 'fine' } } },
      { labels: { 'a\0': 'v' } },
    ],
  });
  assert.equal(
    checkRequest(BatchCreateDevicesRequestSchema, batch)?.message,
    'invalid requests[2].labels["a\\u0000"] "a\\u0000": key must not contain a NUL character',
  );
  const deep = create(BatchCreateDevicesRequestSchema, {
    requests: [{ placement: { nodeSelector: { zone: 'eu\0' } } }],
  });
  assert.equal(
    checkRequest(BatchCreateDevicesRequestSchema, deep)?.field,
    'requests[0].placement.node_selector["zone"]',
  );
  const lone = create(BatchCreateDevicesRequestSchema, { requests: [{}, { displayName: 'x\udc80' }] });
  assert.match(
    checkRequest(BatchCreateDevicesRequestSchema, lone)?.message ?? '',
    /requests\[1\]\.display_name .*valid UTF-8/,
  );
  assert.equal(
    checkRequest(
      BatchCreateDevicesRequestSchema,
      create(BatchCreateDevicesRequestSchema, {
        requests: [{ displayName: 'phone 😀 Ünïcode', labels: { k: '' } }],
      }),
    ),
    undefined,
  );
});

test('sizes the proto leaves open are bounded', () => {
  const long = create(CreateApiKeyRequestSchema, { displayName: 'x'.repeat(MAX_STRING_CHARS + 1) });
  assert.equal(checkRequest(CreateApiKeyRequestSchema, long)?.field, 'display_name');
  assert.equal(
    checkRequest(
      CreateApiKeyRequestSchema,
      create(CreateApiKeyRequestSchema, { displayName: 'x'.repeat(MAX_STRING_CHARS) }),
    ),
    undefined,
  );
  const many = create(BatchCreateDevicesRequestSchema, {
    requests: [
      { labels: Object.fromEntries(Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => [`k${i}`, 'v'])) },
    ],
  });
  assert.match(
    checkRequest(BatchCreateDevicesRequestSchema, many)?.message ?? '',
    /requests\[0\]\.labels .*at most 1000/,
  );
});

test('timestamps outside the range google.protobuf.Timestamp documents are refused', () => {
  for (const seconds of [253_402_300_800n, -62_135_596_801n]) {
    const request = create(CreateApiKeyRequestSchema, { expireTime: { seconds } });
    assert.equal(checkRequest(CreateApiKeyRequestSchema, request)?.field, 'expire_time');
  }
  const nanos = create(CreateApiKeyRequestSchema, { expireTime: { seconds: 1n, nanos: -1 } });
  assert.equal(checkRequest(CreateApiKeyRequestSchema, nanos)?.field, 'expire_time');
  const ok = create(CreateApiKeyRequestSchema, {
    expireTime: { seconds: 253_402_300_799n, nanos: 999_999_999 },
  });
  assert.equal(checkRequest(CreateApiKeyRequestSchema, ok), undefined);
});

test('durations are bounded to a century either way, with consistent signs', () => {
  const year = 366n * 24n * 3600n;
  for (const [seconds, nanos] of [
    [101n * year, 0],
    [-101n * year, 0],
    [1n, -1],
  ] as const) {
    const request = create(DrainHostRequestSchema, { timeout: { seconds, nanos } });
    assert.equal(checkRequest(DrainHostRequestSchema, request)?.field, 'timeout');
  }
  const ok = create(DrainHostRequestSchema, { timeout: { seconds: 99n * year, nanos: 5 } });
  assert.equal(checkRequest(DrainHostRequestSchema, ok), undefined);
});

let store: TestDatabase<Database>;
before(async () => {
  store = await createTestStore();
  await store.db
    .insertInto('tenant')
    .values({
      id: PLATFORM_TENANT_ID,
      kind: 'platform',
      parent_id: null,
      display_name: 'p',
      update_time: new Date(),
    })
    .execute();
});
after(() => store?.close());

test('the interceptor refuses before the handler runs, on any method', async () => {
  const { token } = await createApiKey(store.db, {
    tenantId: PLATFORM_TENANT_ID,
    role: 'platform_admin',
    displayName: 'admin',
  });
  let handled = 0;
  const interceptor = apiInterceptor({
    db: store.db,
    config: loadConfig({}),
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
    clock: systemClock,
    audit: new AuditWriter({ db: store.db, logger: pino({ level: 'silent' }) }),
  });
  const transport = createRouterTransport(
    (router) =>
      router.service(DeviceService, {
        getDevice: () => {
          handled++;
          return {};
        },
      }),
    {
      router: { interceptors: [interceptor] },
      transport: {
        interceptors: [
          (next) => (req) => {
            req.header.set('authorization', `Bearer ${token}`);
            return next(req);
          },
        ],
      },
    },
  );
  const client = createClient(DeviceService, transport);
  await assert.rejects(
    client.getDevice({ deviceId: 'dev_\0' }),
    connectError(Code.InvalidArgument, /^invalid device_id "dev_\\u0000": must not contain a NUL character$/),
  );
  assert.equal(handled, 0);
  await client.getDevice({ deviceId: 'dev_1' });
  assert.equal(handled, 1);
});
