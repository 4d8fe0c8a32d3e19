import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { createClient, createRouterTransport } from '@connectrpc/connect';
import { ApiKeyService } from '@cphone/proto';
import { waitFor } from '@cphone/proto/testing';
import type { Kysely, KyselyPlugin } from 'kysely';
import pino from 'pino';
import { apiKeyService } from '../api/api-key-service.js';
import { AuditWriter } from '../api/audit-writer.js';
import { apiInterceptor } from '../api/interceptors.js';
import type { Clock } from '../clock.js';
import { loadConfig } from '../config.js';
import { createMetrics } from '../metrics.js';
import type { Database } from '../store/schema.js';
import { createTestStore, type TestDatabase } from '../testing.js';
import { createApiKey, KEY_USE_RESOLUTION_MS } from './api-keys.js';
import { PLATFORM_TENANT_ID } from './bootstrap.js';

let store: TestDatabase<Database>;

before(async () => {
  store = await createTestStore();
  await store.db
    .insertInto('tenant')
    .values({
      id: PLATFORM_TENANT_ID,
      kind: 'platform',
      parent_id: null,
      display_name: 'platform',
      update_time: new Date(),
    })
    .execute();
});

after(async () => {
  await store?.close();
});

/** Counts the UPDATE statements issued through the handle it is installed on (or fails them). */
function updateSpy(options: { fail?: boolean } = {}) {
  const spy = {
    updates: 0,
    plugin: {
      transformQuery(args) {
        if (args.node.kind === 'UpdateQueryNode') {
          spy.updates++;
          if (options.fail) throw new Error('database unavailable');
        }
        return args.node;
      },
      transformResult: async (args) => args.result,
    } satisfies KyselyPlugin,
  };
  return spy;
}

/** The API key service behind the real auth interceptor, in memory, on a clock the test moves. */
function apiAt(db: Kysely<Database>, clock: Clock, token: string, logLines: string[] = []) {
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(line) });
  const transport = createRouterTransport((router) => router.service(ApiKeyService, apiKeyService({ db })), {
    router: {
      interceptors: [
        apiInterceptor({
          db,
          config: loadConfig({}),
          logger,
          metrics: createMetrics(),
          clock,
          audit: new AuditWriter({ db, logger }),
        }),
      ],
    },
    transport: {
      interceptors: [
        (next) => (req) => {
          req.header.set('authorization', `Bearer ${token}`);
          return next(req);
        },
      ],
    },
  });
  return createClient(ApiKeyService, transport);
}

test('a key records its last use, rewriting it at most once per resolution window', async () => {
  const { id, token } = await createApiKey(store.db, {
    tenantId: PLATFORM_TENANT_ID,
    role: 'tenant_user',
    displayName: 'busy key',
  });
  const t0 = new Date('2031-03-01T12:00:00Z');
  let now = t0;
  const spy = updateSpy();
  const api = apiAt(store.db.withPlugin(spy.plugin), { now: () => now }, token);
  const lastUse = async () => {
    const { apiKey } = await api.getApiKey({ apiKeyId: id });
    return apiKey?.lastUseTime ? timestampDate(apiKey.lastUseTime) : undefined;
  };

  // The write runs in the background of the first call, so a read may come before it lands.
  assert.deepEqual(await waitFor('the first use recorded', lastUse, (v) => v !== undefined), t0);

  now = new Date(t0.getTime() + KEY_USE_RESOLUTION_MS / 2);
  const writesBefore = spy.updates;
  assert.deepEqual(await lastUse(), t0);
  assert.equal(spy.updates, writesBefore, 'a use within the window writes nothing');

  const { apiKeys } = await api.listApiKeys({});
  assert.deepEqual(
    apiKeys.filter((k) => k.apiKeyId === id).map((k) => k.lastUseTime && timestampDate(k.lastUseTime)),
    [t0],
  );

  const t1 = new Date(t0.getTime() + KEY_USE_RESOLUTION_MS);
  now = t1;
  await waitFor('a use after the window recorded', lastUse, (v) => v?.getTime() === t1.getTime());
});

test('a failed last-use write is logged at warn and the call still succeeds', async () => {
  const { id, token } = await createApiKey(store.db, {
    tenantId: PLATFORM_TENANT_ID,
    role: 'tenant_user',
    displayName: 'key on a failing store',
  });
  const logLines: string[] = [];
  const db = store.db.withPlugin(updateSpy({ fail: true }).plugin);
  const api = apiAt(db, { now: () => new Date() }, token, logLines);

  const { apiKey } = await api.getApiKey({ apiKeyId: id });
  assert.equal(apiKey?.apiKeyId, id);
  const line = await waitFor(
    'the failure logged',
    () => logLines[0],
    (v) => v !== undefined,
  );
  const entry = JSON.parse(line) as { level: number; msg: string; keyId: string; err: { message: string } };
  assert.deepEqual(
    { level: entry.level, msg: entry.msg, keyId: entry.keyId, err: entry.err.message },
    { level: 40, msg: 'recording API key use failed', keyId: id, err: 'database unavailable' },
  );
  assert.equal(
    (
      await store.db
        .selectFrom('api_key')
        .select('last_used_time')
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    ).last_used_time,
    null,
  );
});
