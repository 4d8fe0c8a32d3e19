// The only place the control plane reads its environment: validated once, frozen, with defaults.
import { join, resolve } from 'node:path';
import { MIN_PAGE_TOKEN_SECRET_BYTES, PAGE_TOKEN_KEY_ID, type PageTokenKey } from './api/pagination.js';
import { InvalidArgumentError } from './errors.js';

export interface ControlPlaneConfig {
  /** Folder for PGlite data, the generated CA, the bootstrap key and artifacts. CPHONE_DATA_DIR, default ./.data/control-plane */
  readonly dataDir: string;
  /** PostgreSQL URL; PGlite in dataDir when unset. DATABASE_URL */
  readonly databaseUrl: string | undefined;
  /**
   * Connections this process keeps to PostgreSQL (ignored on PGlite). Every replica holds this
   * many, so replicas x pool size must stay under the server's max_connections. CPHONE_DB_POOL_SIZE,
   * default 10
   */
  readonly dbPoolSize: number;
  /** Run migrations at start. CPHONE_MIGRATE, default true */
  readonly migrate: boolean;
  /** HTTP listen address (API, assets, health, metrics). CPHONE_HTTP_HOST/CPHONE_HTTP_PORT, default 127.0.0.1:8080 */
  readonly httpHost: string;
  readonly httpPort: number;
  /**
   * PEM certificate chain and key for the HTTP port: when both are set it serves HTTPS, HTTP/2 and
   * HTTP/1.1 by ALPN (plain gRPC, Connect, gRPC-web); unset, cleartext HTTP/1.1 and h2c (the
   * embedded default, or behind a TLS-terminating proxy). CPHONE_HTTP_TLS_CERT/CPHONE_HTTP_TLS_KEY
   */
  readonly httpTlsCertFile: string | undefined;
  readonly httpTlsKeyFile: string | undefined;
  /** Agent gateway (gRPC over TLS) listen address. CPHONE_GRPC_HOST/CPHONE_GRPC_PORT, default 0.0.0.0:8443 */
  readonly grpcHost: string;
  readonly grpcPort: number;
  /** Operator TLS files for the gateway; generated in dataDir when unset. CPHONE_TLS_CERT/CPHONE_TLS_KEY/CPHONE_TLS_CA */
  readonly tlsCertFile: string | undefined;
  readonly tlsKeyFile: string | undefined;
  readonly tlsCaFile: string | undefined;
  /**
   * How often the gateway reads its TLS files again (ms): a changed, valid certificate, key or CA
   * bundle serves new handshakes, connected agents keep their streams. SIGHUP reloads at once;
   * 0 reloads on SIGHUP only. CPHONE_TLS_RELOAD_INTERVAL_MS, default 10000
   */
  readonly tlsReloadIntervalMs: number;
  /** Agent heartbeat interval in ms. CPHONE_HEARTBEAT_INTERVAL_MS, default 10000 */
  readonly heartbeatIntervalMs: number;
  /** A host silent for this long (ms) is unreachable. CPHONE_HEARTBEAT_TTL_MS, default 30000 */
  readonly heartbeatTtlMs: number;
  /** An unreachable host's phones become lost after this grace (ms). CPHONE_LOST_GRACE_MS, default 60000 */
  readonly lostGraceMs: number;
  /** Public base URL the agents use to download artifacts. CPHONE_PUBLIC_URL, default http(s)://<httpHost>:<httpPort> */
  readonly publicUrl: string;
  /** Largest artifact (APK or file) an upload may declare, in bytes. CPHONE_MAX_ARTIFACT_BYTES, default 512 MiB */
  readonly maxArtifactBytes: number;
  /** pino level. CPHONE_LOG_LEVEL, default info */
  readonly logLevel: string;
  /**
   * Folder of the Ed25519 keys stream tokens are signed with (`<key id>.pem`, see
   * streams/keys.ts); in production a secret mounted on every replica. CPHONE_STREAM_KEYS_DIR,
   * default <dataDir>/stream-keys, where the first start makes a key.
   */
  readonly streamKeysDir: string;
  /** A new stream key signs only once it is this old, so every agent knows it first. CPHONE_STREAM_KEY_OVERLAP_MS, default 1 h */
  readonly streamKeyOverlapMs: number;
  /** STUN server URLs handed to viewers. CPHONE_STUN_URLS (comma-separated), default none */
  readonly stunUrls: readonly string[];
  /** TURN server URLs handed to viewers with short-lived credentials. CPHONE_TURN_URLS (comma-separated) */
  readonly turnUrls: readonly string[];
  /** coturn's static-auth-secret; TURN is offered only when set. CPHONE_TURN_SECRET (a secret) */
  readonly turnSecret: string | undefined;
  /** Lifetime of TURN credentials in seconds. CPHONE_TURN_TTL_SECONDS, default 86400 */
  readonly turnTtlSeconds: number;
  /**
   * HMAC keys that sign API page tokens. CPHONE_PAGE_TOKEN_KEYS: comma-separated `<id>:<secret>`
   * with the secret in base64 (at least 32 bytes, e.g. `openssl rand -base64 32`); the first signs,
   * all verify, so a rotation lists the new key first and keeps the old one second until clients
   * have finished paging with tokens it signed. Production (several replicas, separate disks) must
   * set it, the same list on every replica, from its secret store. Unset (empty): a key is made at
   * the first start and kept in dataDir/page-token-key, which replicas sharing a data dir agree on.
   */
  readonly pageTokenKeys: readonly PageTokenKey[];
  /**
   * How long an API key's authentication (its principal and tenant scope) is kept, in ms; every
   * revocation and tenant change drops it at once on every replica (auth/auth-cache.ts). 0 reads
   * the database on every call. CPHONE_AUTH_CACHE_TTL_MS, default 5000
   */
  readonly authCacheTtlMs: number;
  /** Most keys whose authentication is kept (least recently used dropped). CPHONE_AUTH_CACHE_MAX_ENTRIES, default 10000 */
  readonly authCacheMaxEntries: number;
  /**
   * How often the leader reads each limited tenant's device minutes against max_device_minutes,
   * in ms (tenants/minutes-enforcer.ts). CPHONE_QUOTA_MINUTES_INTERVAL_MS, default 60000
   */
  readonly quotaMinutesIntervalMs: number;
  /**
   * A built web console (web/dist/console: `npm run build -w @cphone/web`) to serve at `/`; unset,
   * no console is served (production serves the static build from any web server). CPHONE_CONSOLE_DIR
   */
  readonly consoleDir: string | undefined;
  /**
   * A web session unused for this long (ms) ends; each use moves the deadline on (recorded at most
   * once a minute). CPHONE_SESSION_IDLE_TIMEOUT_MS, default 12 h
   */
  readonly sessionIdleTimeoutMs: number;
  /** A web session ends this long (ms) after its sign-in, used or not. CPHONE_SESSION_LIFETIME_MS, default 7 days */
  readonly sessionLifetimeMs: number;
  /** Failed sign-ins counted over this window (ms). CPHONE_SIGN_IN_WINDOW_MS, default 15 min */
  readonly signInWindowMs: number;
  /** Failed sign-ins for one email in the window before SignIn refuses it. CPHONE_SIGN_IN_MAX_FAILURES_PER_ACCOUNT, default 5 */
  readonly signInMaxFailuresPerAccount: number;
  /** Failed sign-ins from one client address in the window. CPHONE_SIGN_IN_MAX_FAILURES_PER_ADDRESS, default 20 */
  readonly signInMaxFailuresPerAddress: number;
  /** How long an invitation may be accepted (ms). CPHONE_INVITATION_TTL_MS, default 7 days */
  readonly invitationTtlMs: number;
  /**
   * Proxies whose X-Forwarded-For is believed for the client's address (audit rows): addresses or
   * CIDR ranges, comma-separated. Unset, the socket's peer is the client. CPHONE_TRUSTED_PROXIES
   */
  readonly trustedProxies: readonly string[];
  /**
   * Token bucket of each API key (and signed-in user): calls per second and burst.
   * CPHONE_RATE_LIMIT_KEY_RPS, default 200; CPHONE_RATE_LIMIT_KEY_BURST, default 400. A tenant's
   * quota may override both (SetQuota, key_rate_limit_rps/burst). 0 RPS turns the limit off.
   */
  readonly rateLimitKeyRps: number;
  readonly rateLimitKeyBurst: number;
  /**
   * Token bucket of each tenant (the calls of all its keys and users; its descendants have buckets
   * of their own). CPHONE_RATE_LIMIT_TENANT_RPS, default 1000; CPHONE_RATE_LIMIT_TENANT_BURST,
   * default 2000. Overridden per tenant by SetQuota (rate_limit_rps/burst). 0 RPS turns it off.
   */
  readonly rateLimitTenantRps: number;
  readonly rateLimitTenantBurst: number;
  /**
   * Keys that encrypt webhook signing secrets at rest (AES-256-GCM), in the form of
   * CPHONE_PAGE_TOKEN_KEYS: `<id>:<base64 secret>` (at least 32 bytes), comma-separated; the first
   * encrypts new secrets, every one decrypts, so a rotation lists the new key first and keeps the
   * old one until every webhook's secret was rotated. Production (several replicas, separate disks)
   * sets it, the same on every replica. Unset: a key made at the first start and kept in
   * dataDir/webhook-secret-key. CPHONE_WEBHOOK_SECRET_KEYS
   */
  readonly webhookSecretKeys: readonly PageTokenKey[];
  /**
   * Webhook targets admitted although private, loopback or link-local, and allowed over http://:
   * host names (exact, case-insensitive), IP addresses or CIDRs, comma-separated. Empty in
   * production; the embedded platform and tests allow loopback. CPHONE_WEBHOOK_ALLOW_HOSTS
   */
  readonly webhookAllowHosts: readonly string[];
  /** One delivery attempt's limit (ms) until the response headers. CPHONE_WEBHOOK_TIMEOUT_MS, default 10 s */
  readonly webhookTimeoutMs: number;
  /** A delivery is retried for this long (ms) after its event, then marked failed. CPHONE_WEBHOOK_RETRY_WINDOW_MS, default 24 h */
  readonly webhookRetryWindowMs: number;
  /**
   * The first retry's delay (ms); each next one doubles, up to the maximum, with jitter (each
   * delay is drawn between half and all of it). CPHONE_WEBHOOK_BACKOFF_MS, default 5 s;
   * CPHONE_WEBHOOK_BACKOFF_MAX_MS, default 1 h
   */
  readonly webhookBackoffMs: number;
  readonly webhookBackoffMaxMs: number;
  /**
   * A webhook whose every attempt has failed for this long (ms) is disabled, with a
   * WEBHOOK_DISABLED event to the tenant's other webhooks. CPHONE_WEBHOOK_DISABLE_AFTER_MS, default 24 h
   */
  readonly webhookDisableAfterMs: number;
  /** How often each replica looks for due deliveries (ms). CPHONE_WEBHOOK_POLL_MS, default 1000 */
  readonly webhookPollMs: number;
  /** Deliveries in flight at once per replica. CPHONE_WEBHOOK_CONCURRENCY, default 16 */
  readonly webhookConcurrency: number;
  /** Events and delivery logs older than this (ms) are deleted. CPHONE_WEBHOOK_RETENTION_MS, default 30 days */
  readonly webhookRetentionMs: number;
  /**
   * Raw usage samples are kept this many whole months before the current one, then their monthly
   * partition is dropped (the rollups, which every usage query reads, are kept). 0 keeps them
   * forever. CPHONE_USAGE_RETENTION_MONTHS, default 13
   */
  readonly usageRetentionMonths: number;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidArgumentError(name, raw, `must be an integer >= ${min}`);
  }
  return value;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A list of `<id>:<base64 secret>` keys (page tokens, webhook secrets): the first is current. */
function keyList(env: Env, name: string): PageTokenKey[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return [];
  // Errors name a key by its position, never by its text: it may be a secret.
  const keys = raw.split(',').map((entry, index) => {
    const colon = entry.indexOf(':');
    const id = entry.slice(0, Math.max(colon, 0)).trim();
    const secret = Buffer.from(entry.slice(colon + 1).trim(), 'base64');
    if (colon < 0 || !PAGE_TOKEN_KEY_ID.test(id)) {
      throw new InvalidArgumentError(
        name,
        `key ${index + 1}`,
        'each key must be <id>:<base64 secret>, the id 1-32 of A-Z a-z 0-9 _ -',
      );
    }
    if (secret.byteLength < MIN_PAGE_TOKEN_SECRET_BYTES) {
      throw new InvalidArgumentError(
        name,
        `key ${index + 1} (${id})`,
        `the secret must be at least ${MIN_PAGE_TOKEN_SECRET_BYTES} bytes, in base64`,
      );
    }
    return { id, secret };
  });
  if (new Set(keys.map((k) => k.id)).size !== keys.length) {
    throw new InvalidArgumentError(name, keys.map((k) => k.id).join(','), 'key ids must be distinct');
  }
  return keys;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new InvalidArgumentError(name, raw, 'must be true or false');
}

export function loadConfig(
  env: Env = process.env,
  overrides: Partial<ControlPlaneConfig> = {},
): ControlPlaneConfig {
  const httpHost = env.CPHONE_HTTP_HOST || '127.0.0.1';
  const httpPort = int(env, 'CPHONE_HTTP_PORT', 8080);
  const merged: ControlPlaneConfig = {
    dataDir: resolve(env.CPHONE_DATA_DIR || '.data/control-plane'),
    databaseUrl: env.DATABASE_URL || undefined,
    dbPoolSize: int(env, 'CPHONE_DB_POOL_SIZE', 10, 1),
    migrate: bool(env, 'CPHONE_MIGRATE', true),
    httpHost,
    httpPort,
    httpTlsCertFile: env.CPHONE_HTTP_TLS_CERT || undefined,
    httpTlsKeyFile: env.CPHONE_HTTP_TLS_KEY || undefined,
    grpcHost: env.CPHONE_GRPC_HOST || '0.0.0.0',
    grpcPort: int(env, 'CPHONE_GRPC_PORT', 8443),
    tlsCertFile: env.CPHONE_TLS_CERT || undefined,
    tlsKeyFile: env.CPHONE_TLS_KEY || undefined,
    tlsCaFile: env.CPHONE_TLS_CA || undefined,
    tlsReloadIntervalMs: int(env, 'CPHONE_TLS_RELOAD_INTERVAL_MS', 10_000, 0),
    heartbeatIntervalMs: int(env, 'CPHONE_HEARTBEAT_INTERVAL_MS', 10_000, 100),
    heartbeatTtlMs: int(env, 'CPHONE_HEARTBEAT_TTL_MS', 30_000, 100),
    lostGraceMs: int(env, 'CPHONE_LOST_GRACE_MS', 60_000, 0),
    publicUrl: env.CPHONE_PUBLIC_URL || '',
    maxArtifactBytes: int(env, 'CPHONE_MAX_ARTIFACT_BYTES', 512 * 1024 * 1024, 1),
    logLevel: env.CPHONE_LOG_LEVEL || 'info',
    streamKeysDir: env.CPHONE_STREAM_KEYS_DIR ? resolve(env.CPHONE_STREAM_KEYS_DIR) : '',
    streamKeyOverlapMs: int(env, 'CPHONE_STREAM_KEY_OVERLAP_MS', 3_600_000, 0),
    stunUrls: list(env.CPHONE_STUN_URLS),
    turnUrls: list(env.CPHONE_TURN_URLS),
    turnSecret: env.CPHONE_TURN_SECRET || undefined,
    turnTtlSeconds: int(env, 'CPHONE_TURN_TTL_SECONDS', 86_400, 60),
    pageTokenKeys: keyList(env, 'CPHONE_PAGE_TOKEN_KEYS'),
    authCacheTtlMs: int(env, 'CPHONE_AUTH_CACHE_TTL_MS', 5000, 0),
    authCacheMaxEntries: int(env, 'CPHONE_AUTH_CACHE_MAX_ENTRIES', 10_000, 1),
    quotaMinutesIntervalMs: int(env, 'CPHONE_QUOTA_MINUTES_INTERVAL_MS', 60_000, 100),
    consoleDir: env.CPHONE_CONSOLE_DIR ? resolve(env.CPHONE_CONSOLE_DIR) : undefined,
    sessionIdleTimeoutMs: int(env, 'CPHONE_SESSION_IDLE_TIMEOUT_MS', 12 * 3_600_000, 60_000),
    sessionLifetimeMs: int(env, 'CPHONE_SESSION_LIFETIME_MS', 7 * 86_400_000, 60_000),
    signInWindowMs: int(env, 'CPHONE_SIGN_IN_WINDOW_MS', 15 * 60_000, 1000),
    signInMaxFailuresPerAccount: int(env, 'CPHONE_SIGN_IN_MAX_FAILURES_PER_ACCOUNT', 5, 1),
    signInMaxFailuresPerAddress: int(env, 'CPHONE_SIGN_IN_MAX_FAILURES_PER_ADDRESS', 20, 1),
    invitationTtlMs: int(env, 'CPHONE_INVITATION_TTL_MS', 7 * 86_400_000, 60_000),
    trustedProxies: list(env.CPHONE_TRUSTED_PROXIES),
    rateLimitKeyRps: int(env, 'CPHONE_RATE_LIMIT_KEY_RPS', 200, 0),
    rateLimitKeyBurst: int(env, 'CPHONE_RATE_LIMIT_KEY_BURST', 400, 1),
    rateLimitTenantRps: int(env, 'CPHONE_RATE_LIMIT_TENANT_RPS', 1000, 0),
    rateLimitTenantBurst: int(env, 'CPHONE_RATE_LIMIT_TENANT_BURST', 2000, 1),
    webhookSecretKeys: keyList(env, 'CPHONE_WEBHOOK_SECRET_KEYS'),
    webhookAllowHosts: list(env.CPHONE_WEBHOOK_ALLOW_HOSTS),
    webhookTimeoutMs: int(env, 'CPHONE_WEBHOOK_TIMEOUT_MS', 10_000, 1),
    webhookRetryWindowMs: int(env, 'CPHONE_WEBHOOK_RETRY_WINDOW_MS', 86_400_000, 0),
    webhookBackoffMs: int(env, 'CPHONE_WEBHOOK_BACKOFF_MS', 5000, 1),
    webhookBackoffMaxMs: int(env, 'CPHONE_WEBHOOK_BACKOFF_MAX_MS', 3_600_000, 1),
    webhookDisableAfterMs: int(env, 'CPHONE_WEBHOOK_DISABLE_AFTER_MS', 86_400_000, 0),
    webhookPollMs: int(env, 'CPHONE_WEBHOOK_POLL_MS', 1000, 1),
    webhookConcurrency: int(env, 'CPHONE_WEBHOOK_CONCURRENCY', 16, 1),
    webhookRetentionMs: int(env, 'CPHONE_WEBHOOK_RETENTION_MS', 30 * 86_400_000, 60_000),
    usageRetentionMonths: int(env, 'CPHONE_USAGE_RETENTION_MONTHS', 13, 0),
    ...overrides,
  };
  const config: ControlPlaneConfig = {
    ...merged,
    // Derived after the overrides, so an overridden listen address is also the default public URL
    // (a port of 0 is replaced by the bound one at start).
    streamKeysDir: merged.streamKeysDir || join(merged.dataDir, 'stream-keys'),
    publicUrl:
      merged.publicUrl ||
      `${merged.httpTlsCertFile ? 'https' : 'http'}://${merged.httpHost.includes(':') ? `[${merged.httpHost}]` : merged.httpHost}:${merged.httpPort}`,
  };
  if (!config.httpTlsCertFile !== !config.httpTlsKeyFile) {
    const [name, value] = config.httpTlsCertFile
      ? ['CPHONE_HTTP_TLS_KEY', config.httpTlsKeyFile]
      : ['CPHONE_HTTP_TLS_CERT', config.httpTlsCertFile];
    throw new InvalidArgumentError(
      name,
      String(value ?? ''),
      'must be set together with the other of CPHONE_HTTP_TLS_CERT and CPHONE_HTTP_TLS_KEY',
    );
  }
  if (config.heartbeatTtlMs <= config.heartbeatIntervalMs) {
    throw new InvalidArgumentError(
      'CPHONE_HEARTBEAT_TTL_MS',
      String(config.heartbeatTtlMs),
      `must exceed the heartbeat interval (${config.heartbeatIntervalMs} ms)`,
    );
  }
  return Object.freeze(config);
}

/** The config as logged at start: secrets and credentials in URLs are masked. */
export function describeConfig(config: ControlPlaneConfig): Record<string, unknown> {
  const masked = config.databaseUrl?.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@');
  return {
    ...config,
    databaseUrl: masked ?? 'pglite',
    turnSecret: config.turnSecret ? '***' : undefined,
    pageTokenKeys: config.pageTokenKeys.length
      ? config.pageTokenKeys.map((k) => `${k.id}:***`)
      : 'generated in dataDir',
    webhookSecretKeys: config.webhookSecretKeys.length
      ? config.webhookSecretKeys.map((k) => `${k.id}:***`)
      : 'generated in dataDir',
  };
}

/** The console server's settings (console-main.ts: the web console's image serves only the static build). */
export interface ConsoleServerConfig {
  /** Listen address. CPHONE_HTTP_HOST/CPHONE_HTTP_PORT, default 0.0.0.0:8080 */
  readonly httpHost: string;
  readonly httpPort: number;
  /** The built console (index.html, assets/, cphone-player.js). CPHONE_CONSOLE_DIR, required */
  readonly consoleDir: string;
  /** pino level. CPHONE_LOG_LEVEL, default info */
  readonly logLevel: string;
}

export function loadConsoleServerConfig(env: Env = process.env): ConsoleServerConfig {
  if (!env.CPHONE_CONSOLE_DIR) {
    throw new InvalidArgumentError(
      'CPHONE_CONSOLE_DIR',
      '',
      'must name the built console (web/dist/console)',
    );
  }
  return Object.freeze({
    httpHost: env.CPHONE_HTTP_HOST || '0.0.0.0',
    httpPort: int(env, 'CPHONE_HTTP_PORT', 8080),
    consoleDir: resolve(env.CPHONE_CONSOLE_DIR),
    logLevel: env.CPHONE_LOG_LEVEL || 'info',
  });
}
