// Test support: the real HTTP app (Connect API behind the auth interceptor) on a real socket, over a
// test store, with only the services a suite registers. API keys are minted straight in the store.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { type Client, Code, ConnectError, type ConnectRouter, createClient } from '@connectrpc/connect';
import type { Hono } from 'hono';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { createApiKey } from '../auth/api-keys.js';
import { PLATFORM_TENANT_ID } from '../auth/bootstrap.js';
import { type Clock, systemClock } from '../clock.js';
import { type ControlPlaneConfig, loadConfig } from '../config.js';
import { createHttpApp } from '../http/app.js';
import { listenHttp } from '../http/listen.js';
import type { Logger } from '../logger.js';
import { createMetrics, type Metrics } from '../metrics.js';
import type { Database, Role, TenantKind } from '../store/schema.js';
import { insertTenant } from '../store/tenants.js';
import { AuditWriter } from './audit-writer.js';
import { bearerTransport } from './bearer-transport.js';
import { apiInterceptor } from './interceptors.js';

export interface TestApiDeps {
  readonly config: ControlPlaneConfig;
  readonly db: Kysely<Database>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** The API's audit rows; flush() before reading audit_log. */
  readonly audit: AuditWriter;
}

export interface TestApiOptions {
  db: Kysely<Database>;
  routes: (router: ConnectRouter, deps: TestApiDeps) => void;
  extend?: (app: Hono, deps: TestApiDeps) => void;
  config?: Partial<ControlPlaneConfig>;
  /** Default the system clock. */
  clock?: Clock;
}

export interface TestApi {
  readonly url: string;
  readonly deps: TestApiDeps;
  /** A platform_admin token of the platform tenant. */
  readonly adminToken: string;
  /** A fresh API key of `role` in `tenantId`. */
  token(tenantId: string, role: Role): Promise<string>;
  /** Inserts a tenant directly (for suites that do not test tenant creation). */
  tenant(id: string, kind: TenantKind, parentId: string | null): Promise<void>;
  client<S extends DescService>(service: S, token?: string): Client<S>;
  close(): Promise<void>;
}

/**
 * For `assert.rejects`: the error is a Connect error with code `expected` (compared by name, so a
 * failure reads well) and, when given, a message matching `pattern`.
 */
export function connectError(expected: Code, pattern?: RegExp) {
  return (error: unknown) => {
    const e = ConnectError.from(error);
    assert.equal(Code[e.code], Code[expected], e.rawMessage);
    if (pattern) assert.match(e.rawMessage, pattern);
    return true;
  };
}

export async function startTestApi(options: TestApiOptions): Promise<TestApi> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cphone-api-'));
  const config = loadConfig({}, { dataDir, httpPort: 0, ...options.config });
  const logger = pino({ level: 'silent' });
  const deps: TestApiDeps = {
    config,
    db: options.db,
    logger,
    metrics: createMetrics(),
    clock: options.clock ?? systemClock,
    audit: new AuditWriter({ db: options.db, logger }),
  };
  const tenant = async (id: string, kind: TenantKind, parentId: string | null) => {
    await insertTenant(
      options.db,
      { id, kind, parent_id: parentId, display_name: id, update_time: new Date() },
      { ifAbsent: true },
    );
  };
  const token = async (tenantId: string, role: Role) =>
    (await createApiKey(options.db, { tenantId, role, displayName: `test ${role}` })).token;
  await tenant(PLATFORM_TENANT_ID, 'platform', null);
  const adminToken = await token(PLATFORM_TENANT_ID, 'platform_admin');
  const { listener } = createHttpApp({
    logger: deps.logger,
    metrics: deps.metrics,
    ready: async () => true,
    routes: (router) => options.routes(router, deps),
    interceptors: [apiInterceptor(deps)],
    extend: (hono) => options.extend?.(hono, deps),
  });
  const server = await listenHttp({ listener, port: 0, hostname: '127.0.0.1' });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    deps,
    adminToken,
    token,
    tenant,
    client: (service, bearer) => createClient(service, bearerTransport(url, bearer)),
    close: async () => {
      await server.close();
      await deps.audit.flush();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
